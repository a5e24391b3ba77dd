/** A patient's records, uploading one (sealed here), and one record: open it here
 * (verified here), share it into a group, add a version, crypto-shred a version. */
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { downloadOpened, uploadSealed } from '../records/transfer.js';
import { Field, Page, Problem, Progress, Status, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';

const CATEGORIES = ['imaging', 'laboratory', 'clinical-note', 'report', 'referral', 'other'];
const SHRED_REASONS = ['entered_in_error', 'patient_request', 'retention_expired', 'legal_order'];

export function RecordTable({ records, caption }) {
  const { t, formatTime, formatBytes } = useHub();
  return (
    <Table
      caption={caption}
      columns={[
        { key: 'title', label: t('record.title'), render: (r) => <Link href={`/records/${r.record_id}`}>{r.title || r.record_id}</Link> },
        { key: 'category', label: t('record.category'), render: (r) => t(`category.${r.category}`) },
        { key: 'version', label: t('record.version'), render: (r) => r.latest_version },
        {
          key: 'size',
          label: t('record.size'),
          render: (r) => {
            const v = r.versions.find((x) => x.version === r.latest_version);
            return v ? formatBytes(v.length) : '';
          },
        },
        { key: 'at', label: t('common.created'), render: (r) => formatTime(r.created_at) },
      ]}
      rows={records.map((r) => ({ ...r, key: r.record_id }))}
      empty={t('records.empty')}
    />
  );
}

function UploadForm({ patientId, recordId, onDone }) {
  const { t, api, formatBytes } = useHub();
  const [file, setFile] = useState(null);
  const [title, setTitle] = useState('');
  const [category, setCategory] = useState('imaging');
  const [progress, setProgress] = useState(null);
  const upload = useAction();
  const submit = (event) => {
    event.preventDefault();
    if (!file) return;
    upload.run(async () => {
      const record = await uploadSealed(api, {
        file,
        contentType: file.type || 'application/octet-stream',
        patientId,
        recordId,
        category,
        title: title.trim(),
        onProgress: (sent, total, phase) => setProgress({ sent, total, phase }),
      });
      onDone?.(record);
      return t(recordId ? 'upload.versionDone' : 'upload.done', { version: record.latest_version });
    });
  };
  return (
    <form class="form" onSubmit={submit}>
      <Field label={t('upload.file')} hint={t('upload.hint')}>
        {(props) => <input {...props} name="file" type="file" required onChange={(e) => setFile(e.currentTarget.files[0] ?? null)} />}
      </Field>
      {!recordId && (
        <>
          <Field label={t('record.title')}>
            {(props) => <input {...props} name="title" maxLength={120} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />}
          </Field>
          <Field label={t('record.category')}>
            {(props) => (
              <select {...props} name="category" value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
                {CATEGORIES.map((c) => (
                  <option value={c} key={c}>
                    {t(`category.${c}`)}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </>
      )}
      {file && <p class="hint">{t('upload.selected', { name: file.name, size: formatBytes(file.size) })}</p>}
      <button type="submit" disabled={upload.pending || !file}>
        {recordId ? t('upload.version.submit') : t('upload.submit')}
      </button>
      {progress && upload.pending && <Progress label={t(`upload.phase.${progress.phase}`)} value={progress.sent} max={progress.total} />}
      {typeof upload.done === 'string' && <Status>{upload.done}</Status>}
      <Problem error={upload.error} />
    </form>
  );
}

export function PatientRecords({ id }) {
  const { t, api } = useHub();
  const records = useLoad(() => api.get(`/patients/${encodeURIComponent(id)}/records`), [id]);
  return (
    <Page title={t('patient.title', { id })}>
      <Problem error={records.error} />
      {records.data && <RecordTable records={records.data.records} caption={t('patient.records.caption', { id })} />}
      <h2>{t('upload.heading')}</h2>
      <p>{t('upload.sealedHere')}</p>
      <UploadForm patientId={id} onDone={() => records.reload()} />
    </Page>
  );
}

function Opened({ opened, title }) {
  const { t, formatBytes } = useHub();
  const [url, setUrl] = useState(null);
  useEffect(() => {
    const made = URL.createObjectURL(opened.blob);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [opened]);
  if (!url) return null;
  const name = `${(title || 'record').replace(/[^\w.-]+/g, '_')}-v${opened.version}`;
  return (
    <div class="opened" role="status">
      <p>{t('download.verified', { size: formatBytes(opened.blob.size), version: opened.version })}</p>
      <p class="hint">
        SHA-256 <code id="opened-sha256">{opened.sha256}</code>
      </p>
      <p class="actions">
        <a href={url} target="_blank" rel="noopener">
          {t('download.open')}
        </a>
        <a href={url} download={name}>
          {t('download.save')}
        </a>
      </p>
      {opened.contentType.startsWith('image/') && <img src={url} alt={t('download.preview', { title })} class="preview" />}
    </div>
  );
}

export function RecordDetail({ id }) {
  const { t, api, formatTime, formatBytes, me } = useHub();
  const record = useLoad(() => api.get(`/records/${id}`), [id]);
  const groups = useLoad(() => api.get('/groups'), []);
  const open = useAction();
  const share = useAction();
  const shred = useAction();
  const [progress, setProgress] = useState(null);
  const [groupId, setGroupId] = useState('');
  const [shredVersion, setShredVersion] = useState('');
  const [reason, setReason] = useState(SHRED_REASONS[0]);
  const r = record.data;
  const author = r && me.reg_no && r.author === me.reg_no;
  const activeGroups = (groups.data?.groups ?? []).filter((g) => r && g.patient_id === r.patient_id && g.status === 'open');

  const openVersion = (version) =>
    open.run(async () => {
      setProgress(null);
      return downloadOpened(api, { recordId: id, version, onProgress: (done, total) => setProgress({ done, total }) });
    });

  return (
    <Page title={r ? r.title || t('record.heading') : t('record.heading')}>
      <Problem error={record.error} />
      {r && (
        <>
          <dl class="facts">
            <dt>{t('common.patient')}</dt>
            <dd>
              <Link href={`/patients/${r.patient_id}`}>{r.patient_id}</Link>
            </dd>
            <dt>{t('record.category')}</dt>
            <dd>{t(`category.${r.category}`)}</dd>
            <dt>{t('record.author')}</dt>
            <dd>{r.author}</dd>
            <dt>{t('common.institution')}</dt>
            <dd>{r.institution}</dd>
          </dl>
          <h2>{t('record.versions')}</h2>
          <Table
            caption={t('record.versions.caption')}
            columns={[
              { key: 'v', label: t('record.version'), render: (v) => v.version },
              { key: 'type', label: t('record.type'), render: (v) => v.content_type },
              { key: 'size', label: t('record.size'), render: (v) => formatBytes(v.length) },
              { key: 'status', label: t('common.status'), render: (v) => t(`versionStatus.${v.status}`) },
              { key: 'at', label: t('common.created'), render: (v) => formatTime(v.created_at) },
              {
                key: 'act',
                label: t('common.actions'),
                render: (v) =>
                  v.status === 'active' ? (
                    <button type="button" disabled={open.pending} onClick={() => openVersion(v.version)}>
                      {t('download.button')} <span class="visually-hidden">{t('record.versionN', { version: v.version })}</span>
                    </button>
                  ) : (
                    ''
                  ),
              },
            ]}
            rows={r.versions.map((v) => ({ ...v, key: v.version }))}
            empty=""
          />
          {open.pending && progress && <Progress label={t('download.progress')} value={progress.done} max={progress.total} />}
          <Problem error={open.error} />
          {open.done && typeof open.done === 'object' && <Opened opened={open.done} title={r.title} />}

          <h2>{t('record.shares')}</h2>
          <ul>
            {r.shares.length ? r.shares.map((s) => (
              <li key={s.group_id}>
                <Link href={`/groups/${s.group_id}`}>{t('record.sharedInto', { group: s.group_id.slice(0, 8) })}</Link> · {formatTime(s.shared_at)}
              </li>
            )) : <li>{t('record.notShared')}</li>}
          </ul>
          <form
            class="form"
            onSubmit={(e) => {
              e.preventDefault();
              share.run(async () => {
                await api.post(`/records/${id}/share`, { group_id: groupId });
                record.reload();
                return t('record.shared');
              });
            }}
          >
            <Field label={t('record.shareInto')}>
              {(props) => (
                <select {...props} name="group" required value={groupId} onChange={(e) => setGroupId(e.currentTarget.value)}>
                  <option value="">{t('record.chooseGroup')}</option>
                  {activeGroups.map((g) => (
                    <option key={g.group_id} value={g.group_id}>
                      {g.title}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <button type="submit" disabled={share.pending || !groupId}>
              {t('record.share')}
            </button>
            {typeof share.done === 'string' && <Status>{share.done}</Status>}
            <Problem error={share.error} />
          </form>

          {author && (
            <>
              <h2>{t('record.newVersion')}</h2>
              <UploadForm recordId={id} onDone={() => record.reload()} />
              <h2>{t('record.shred')}</h2>
              <p>{t('record.shred.explain')}</p>
              <form
                class="form"
                onSubmit={(e) => {
                  e.preventDefault();
                  shred.run(async () => {
                    await api.del(`/records/${id}/versions/${shredVersion}`, { reason });
                    record.reload();
                    return t('record.shredded', { version: shredVersion });
                  });
                }}
              >
                <Field label={t('record.version')}>
                  {(props) => (
                    <select {...props} name="version" required value={shredVersion} onChange={(e) => setShredVersion(e.currentTarget.value)}>
                      <option value="">{t('record.chooseVersion')}</option>
                      {r.versions.filter((v) => v.status === 'active').map((v) => (
                        <option key={v.version} value={String(v.version)}>
                          {t('record.versionN', { version: v.version })}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                <Field label={t('record.shred.reason')}>
                  {(props) => (
                    <select {...props} name="reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
                      {SHRED_REASONS.map((c) => (
                        <option key={c} value={c}>
                          {t(`shred.${c}`)}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                <button type="submit" class="danger" disabled={shred.pending || !shredVersion}>
                  {t('record.shred.submit')}
                </button>
                {typeof shred.done === 'string' && <Status>{shred.done}</Status>}
                <Problem error={shred.error} />
              </form>
            </>
          )}
        </>
      )}
    </Page>
  );
}
