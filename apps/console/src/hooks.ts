import { useCallback, useEffect, useRef, useState } from 'react';
import { errorText, getIfChanged } from './api';

/** Whether the tab is visible: polling stops while it is hidden. */
export function useVisible(): boolean {
  const [visible, setVisible] = useState(document.visibilityState === 'visible');
  useEffect(() => {
    const update = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', update);
    return () => document.removeEventListener('visibilitychange', update);
  }, []);
  return visible;
}

export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/**
 * GETs `path` now and then every `intervalMs` while the tab is visible and `active` holds,
 * with If-None-Match: an unchanged answer is a 304 and keeps the same object (no re-render).
 * A new path starts over.
 */
export function usePoll<T>(
  path: string | null,
  intervalMs: number | ((data: T | undefined) => number),
  active = true,
): Polled<T> {
  const [state, setState] = useState<{ path: string | null; data?: T; error?: string }>({ path });
  const etag = useRef<string | null>(null);
  const [tick, setTick] = useState(0);
  const visible = useVisible();
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    etag.current = null;
  }, [path]);

  useEffect(() => {
    if (path === null) return;
    let cancelled = false;
    let timer: number | undefined;
    let latest: T | undefined;
    const once = async () => {
      try {
        const res = await getIfChanged<T>(path, etag.current);
        if (cancelled) return;
        if (res.changed) {
          etag.current = res.etag;
          latest = res.body;
          setState({ path, data: res.body });
        } else {
          setState((s) => (s.error === undefined ? s : { ...s, error: undefined }));
        }
      } catch (err) {
        if (!cancelled) setState((s) => ({ ...s, path, error: errorText(err) }));
      }
      if (!cancelled && active && visible) {
        const wait = typeof intervalMs === 'number' ? intervalMs : intervalMs(latest);
        timer = window.setTimeout(() => void once(), wait);
      }
    };
    void once();
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [path, intervalMs, active, visible, tick]);

  const current = state.path === path;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined, reload };
}

/** The time now, ticking every `intervalMs` (durations of what still runs). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(t);
  }, [intervalMs]);
  return now;
}

/** A one-off async action's state: running, and the API's message when it was refused. */
export function useAction(): {
  busy: boolean;
  error: string | undefined;
  notice: string | undefined;
  run: (what: () => Promise<string | void>) => Promise<boolean>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const run = useCallback(async (what: () => Promise<string | void>) => {
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    try {
      const said = await what();
      if (said) setNotice(said);
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => {
    setError(undefined);
    setNotice(undefined);
  }, []);
  return { busy, error, notice, run, clear };
}
