import { useEffect, useState, type MouseEvent, type ReactNode } from 'react';

/**
 * A few lines of history routing: the API server answers index.html for any path that is not
 * its own, so /runs/42 can be reloaded and shared.
 */

const listeners = new Set<() => void>();

export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  listeners.forEach((l) => l());
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((t) => t + 1);
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

export function Link(props: { to: string; children: ReactNode; className?: string; testId?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} data-testid={props.testId}>
      {props.children}
    </a>
  );
}
