/**
 * The few building blocks every screen uses, accessible by construction: a page with one
 * `h1` that takes focus on navigation (screen readers announce the new screen), fields
 * whose label, hint and error are tied to the control, status and alert regions, and
 * tables with captions and header scopes.
 */
import { useEffect, useRef, useState } from 'preact/hooks';

import { ApiError } from '../api/client.js';
import { useHub } from './context.js';

let fieldCounter = 0;
function useId(prefix) {
  const ref = useRef(null);
  if (ref.current === null) {
    fieldCounter += 1;
    ref.current = `${prefix}-${fieldCounter}`;
  }
  return ref.current;
}

export function Page({ title, children, actions }) {
  const { t } = useHub();
  const heading = useRef(null);
  useEffect(() => {
    document.title = `${title} · ${t('app.name')}`;
    heading.current?.focus();
  }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function Field({ label, hint, error, children, id: given }) {
  const generated = useId('field');
  const id = given ?? generated;
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
  const control = children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? 'true' : undefined });
  return (
    <div class={`field${error ? ' field-error' : ''}`}>
      <label for={id}>{label}</label>
      {hint && (
        <p class="hint" id={hintId}>
          {hint}
        </p>
      )}
      {control}
      {error && (
        <p class="error-text" id={errorId}>
          {error}
        </p>
      )}
    </div>
  );
}

export function Status({ children }) {
  return (
    <p class="status" role="status">
      {children}
    </p>
  );
}

/** An API or sign-in failure, in the user's language, with the service's code. */
export function Problem({ error }) {
  const { t } = useHub();
  if (!error) return null;
  let text = error.message;
  if (error instanceof ApiError) {
    const known = t(`error.${error.code}`);
    text = known !== `error.${error.code}` ? known : t('error.generic', { status: error.status, message: error.message });
  } else if (error.name === 'InvalidRecord') {
    text = t('error.invalid_record');
  }
  return (
    <div class="problem" role="alert">
      <p>{text}</p>
      {error.code && <p class="code">{t('error.code', { code: error.code })}</p>}
    </div>
  );
}

export function Loading() {
  const { t } = useHub();
  return (
    <p class="loading" role="status">
      {t('common.loading')}
    </p>
  );
}

/**
 * Load data for a screen; `reload()` fetches again. Errors are kept for `<Problem>`.
 * @returns {{data: any, error: Error|null, loading: boolean, reload: () => void}}
 */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}

/** Run an action from a button or form; keeps its pending state, result and error. */
export function useAction() {
  const [state, setState] = useState({ pending: false, error: null, done: null });
  const run = async (action) => {
    setState({ pending: true, error: null, done: null });
    try {
      const done = await action();
      setState({ pending: false, error: null, done: done ?? true });
      return done;
    } catch (error) {
      setState({ pending: false, error, done: null });
      return undefined;
    }
  };
  return { ...state, run, reset: () => setState({ pending: false, error: null, done: null }) };
}

export function Table({ caption, columns, rows, empty }) {
  if (!rows.length) return <p class="empty">{empty}</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.key}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={row.key ?? i}>
              {columns.map((c, j) =>
                j === 0 ? (
                  <th scope="row" key={c.key}>
                    {c.render(row)}
                  </th>
                ) : (
                  <td key={c.key}>{c.render(row)}</td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Progress({ label, value, max }) {
  const { t } = useHub();
  const percent = max ? Math.floor((value / max) * 100) : 0;
  return (
    <div class="progress">
      <label>
        {label}
        <progress value={value} max={max || 1} aria-valuetext={t('upload.percent', { percent })}>
          {percent}%
        </progress>
      </label>
      <span aria-hidden="true">{percent}%</span>
    </div>
  );
}
