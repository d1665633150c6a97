import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './styles.css';
import { takeTokenFromHash } from './api';
import { App } from './App';

// Before anything renders: a /#token= link signs in and leaves the address bar.
takeTokenFromHash();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
