import { useEffect, useRef, useState } from 'react';
import { errorText, readLog } from '../api';
import { useVisible } from '../hooks';
import { ErrorBox } from './bits';

/** Bytes read per request, and the most the page shows (the API serves the rest by offset). */
const CHUNK_BYTES = 1024 * 1024;
const SHOWN_BYTES = 4 * 1024 * 1024;

/**
 * A task attempt's log, following while it runs: each poll asks only for the bytes after those
 * already shown (?offset=), once a second while the tab is visible; one last read after it ends.
 * Give it a key per task instance: a new attempt is a new log.
 */
export function TaskLog({ taskInstanceId, running }: { taskInstanceId: number; running: boolean }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const [waiting, setWaiting] = useState(true);
  const [bytesRead, setBytesRead] = useState(0);
  const [follow, setFollow] = useState(true);
  const offset = useRef(0);
  const decoder = useRef(new TextDecoder());
  const pre = useRef<HTMLPreElement>(null);
  const visible = useVisible();

  useEffect(() => {
    let cancelled = false;
    let timer: number | undefined;
    // A full chunk means more is there already: read on at once, finished or not.
    let more = false;
    const once = async () => {
      more = false;
      try {
        const bytes = await readLog(taskInstanceId, offset.current, CHUNK_BYTES);
        if (cancelled) return;
        if (bytes === null) {
          setWaiting(true);
        } else {
          setWaiting(false);
          setError(undefined);
          more = bytes.length >= CHUNK_BYTES;
          if (bytes.length > 0) {
            offset.current += bytes.length;
            const chunk = decoder.current.decode(bytes, { stream: true });
            setText((t) => t + chunk);
            setBytesRead(offset.current);
          }
        }
      } catch (err) {
        if (!cancelled) setError(errorText(err));
      }
      if (cancelled || offset.current >= SHOWN_BYTES) return;
      if (more || (running && visible)) timer = window.setTimeout(() => void once(), more ? 0 : 1000);
    };
    void once();
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [taskInstanceId, running, visible]);

  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  return (
    <div className="log">
      <div className="log-head">
        <span className="muted">
          {running ? 'following…' : 'finished'} · {bytesRead} bytes
        </span>
        <label className="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> scroll with
          output
        </label>
      </div>
      <ErrorBox error={error} />
      {bytesRead >= SHOWN_BYTES ? (
        <div className="notice">
          The console shows the first {SHOWN_BYTES / 1024 / 1024} MiB; the rest:{' '}
          <code>
            GET /api/v1/task-instances/{taskInstanceId}/log?offset={bytesRead}
          </code>
        </div>
      ) : null}
      <pre ref={pre} data-testid="task-log">
        {text || (waiting ? (running ? '(no output yet)' : '(no log)') : '')}
      </pre>
    </div>
  );
}
