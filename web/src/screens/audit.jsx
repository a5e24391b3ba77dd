/** The auditor's screen: audit entries, and each entry's inclusion in the signed log
 * checked here, in the browser: the tree head's ECDSA P-256 signature with the ledger's
 * public key (pinned by the auditor, or fetched and shown by fingerprint), then the
 * entry's own leaf hash (computed here from its canonical bytes) through the audit path
 * to the signed root (RFC 9162). Nothing the server says about validity is used. */
import { useState } from 'preact/hooks';

import { fromBase64 } from '../crypto/bytes.js';
import { LedgerVerificationError, importPublicKeyPem, publicKeyFingerprint, verifyEntryInclusion } from '../ledger/verify.js';
import { Field, Page, Problem, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';
import { query } from '../api/client.js';

function decodeEntry(canonical) {
  try {
    return JSON.parse(new TextDecoder().decode(fromBase64(canonical)));
  } catch {
    return null;
  }
}

function VerifyPanel({ target, pinnedPem }) {
  const { t, api } = useHub();
  const check = useAction();
  const run = () =>
    check.run(async () => {
      let fetchedPem = await (await api.raw('GET', '/audit/public-key', { accept: 'application/x-pem-file' })).text();
      if (!fetchedPem.includes('BEGIN PUBLIC KEY')) {
        // Lambda returns a non-text media type base64-encoded, and API Gateway passes it
        // on as base64 text unless the first Accept type is a declared binary type.
        fetchedPem = new TextDecoder().decode(fromBase64(fetchedPem.trim()));
      }
      const pem = pinnedPem.trim() || fetchedPem;
      const fingerprint = await publicKeyFingerprint(pem);
      const publicKey = await importPublicKeyPem(pem);
      const proof = await api.get(`/audit/proof/inclusion?index=${target.leaf_index}`);
      if (proof.size !== proof.head.size || proof.index !== target.leaf_index) {
        throw new LedgerVerificationError('MalformedHead', t('audit.verify.mismatch'));
      }
      const result = await verifyEntryInclusion({
        canonical: target.canonical,
        index: target.leaf_index,
        proof: proof.proof,
        head: proof.head,
        publicKey,
      });
      return { fingerprint, pinned: Boolean(pinnedPem.trim()), size: proof.head.size, steps: proof.proof.length, root: proof.head.root, leaf: result.leaf };
    });
  const failed = check.error instanceof LedgerVerificationError;
  return (
    <div class="verify" aria-live="polite">
      <button type="button" onClick={run} disabled={check.pending}>
        {t('audit.verify.button', { index: target.leaf_index })}
      </button>
      {check.done && typeof check.done === 'object' && (
        <div class="result ok" role="status" id="verify-result" data-outcome="verified">
          <p>
            <strong>{t('audit.verify.ok', { index: target.leaf_index, size: check.done.size })}</strong>
          </p>
          <ul>
            <li>{t('audit.verify.signature', { fingerprint: check.done.fingerprint })}</li>
            <li>{check.done.pinned ? t('audit.verify.pinned') : t('audit.verify.fetched')}</li>
            <li>{t('audit.verify.path', { steps: check.done.steps, root: check.done.root })}</li>
          </ul>
        </div>
      )}
      {failed && (
        <div class="result bad" role="alert" id="verify-result" data-outcome="failed">
          <p>
            <strong>{t('audit.verify.failed', { index: target.leaf_index })}</strong>
          </p>
          <p>{t(`audit.failure.${check.error.kind}`)}</p>
        </div>
      )}
      {!failed && <Problem error={check.error} />}
    </div>
  );
}

export function Audit() {
  const { t, api, formatTime } = useHub();
  const [filters, setFilters] = useState({ actor: '', resource: '', since: '', until: '' });
  const [applied, setApplied] = useState({ since: new Date(Date.now() - 7 * 86400_000).toISOString() });
  const [selected, setSelected] = useState(null);
  const [pinnedPem, setPinnedPem] = useState('');
  const entries = useLoad(() => api.get(`/audit/entries${query({ ...applied, limit: 200 })}`), [JSON.stringify(applied)]);
  const set = (name) => (e) => setFilters({ ...filters, [name]: e.currentTarget.value });
  // never the previous search's rows while a new one loads: a check must use what was read now
  const rows = (entries.loading ? [] : entries.data?.entries ?? []).map((e) => ({ ...e, key: e.leaf_index, decoded: decodeEntry(e.canonical) }));
  return (
    <Page title={t('audit.title')}>
      <form
        class="form inline"
        onSubmit={(e) => {
          e.preventDefault();
          setSelected(null);
          setApplied({
            actor: filters.actor.trim(),
            resource: filters.resource.trim(),
            since: filters.since ? new Date(filters.since).toISOString() : new Date(Date.now() - 7 * 86400_000).toISOString(),
            until: filters.until ? new Date(filters.until).toISOString() : '',
          });
        }}
      >
        <Field label={t('audit.actor')} hint={t('audit.actor.hint')}>{(props) => <input {...props} value={filters.actor} onInput={set('actor')} />}</Field>
        <Field label={t('audit.resource')} hint={t('audit.resource.hint')}>{(props) => <input {...props} value={filters.resource} onInput={set('resource')} />}</Field>
        <Field label={t('audit.since')}>{(props) => <input {...props} type="date" value={filters.since} onInput={set('since')} />}</Field>
        <Field label={t('audit.until')}>{(props) => <input {...props} type="date" value={filters.until} onInput={set('until')} />}</Field>
        <button type="submit">{t('audit.search')}</button>
      </form>
      <details class="pin">
        <summary>{t('audit.pin')}</summary>
        <Field label={t('audit.pin.label')} hint={t('audit.pin.hint')}>
          {(props) => <textarea {...props} rows={5} class="mono" value={pinnedPem} onInput={(e) => setPinnedPem(e.currentTarget.value)} />}
        </Field>
      </details>
      <Problem error={entries.error} />
      {selected && <VerifyPanel target={selected} pinnedPem={pinnedPem} key={selected.leaf_index} />}
      <Table
        caption={t('audit.caption')}
        columns={[
          { key: 'i', label: t('audit.index'), render: (e) => e.leaf_index },
          { key: 'at', label: t('common.when'), render: (e) => formatTime(e.decoded?.timestamp_ms) },
          { key: 'actor', label: t('audit.actor'), render: (e) => e.decoded?.actor?.mchk_reg_no ?? e.decoded?.actor?.sub ?? '' },
          { key: 'action', label: t('audit.action'), render: (e) => e.decoded?.action ?? '' },
          { key: 'resource', label: t('audit.resource'), render: (e) => (e.decoded ? `${e.decoded.resource.type}:${e.decoded.resource.id.slice(0, 12)}` : '') },
          { key: 'outcome', label: t('audit.outcome'), render: (e) => e.decoded?.outcome ?? '' },
          {
            key: 'check',
            label: t('common.actions'),
            render: (e) => (
              <button type="button" class="secondary" onClick={() => setSelected(e)}>
                {t('audit.check')} <span class="visually-hidden">{e.leaf_index}</span>
              </button>
            ),
          },
        ]}
        rows={rows}
        empty={entries.loading ? t('common.loading') : t('audit.empty')}
      />
    </Page>
  );
}
