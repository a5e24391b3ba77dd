/** Institution admins: their institution's affiliations (clinical roles per doctor) and
 * the self-registrations claiming it, waiting for approval; the institution's pilot
 * metrics. Platform admins: the same for any institution they pick, the registrations of
 * every institution (new clinics are theirs alone to approve) and the institution admin
 * role besides the clinical ones. The routes are the identity routes of docs/identity.md;
 * the service decides every action (Cedar), the screen only offers what it would allow. */
import { useState } from 'preact/hooks';

import { query } from '../api/client.js';
import { Field, Page, Problem, Status, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';

// What an institution admin may grant (app/access/policies/institutions.cedar); a platform
// admin may also make an institution admin. Auditor and platform admin: operator CLI only.
const CLINICAL_ROLES = ['doctor', 'specialist'];
const PLATFORM_ROLES = [...CLINICAL_ROLES, 'institution_admin'];
const REJECTIONS = ['identity_not_confirmed', 'not_practising_here', 'duplicate', 'other'];
// The affiliation routes take a registration number; staff (``sub:<sub>``) are kept by
// the operator CLI.
const REG_NO = /^[A-Za-z]{1,2}[0-9]{4,6}$/;

export function Institution() {
  const { t, api, me, formatTime } = useHub();
  const platformAdmin = me.roles.includes('platform_admin');
  const [inst, setInst] = useState(me.institution);
  const institutions = useLoad(() => (platformAdmin ? api.get('/institutions?status=all') : Promise.resolve([])), [platformAdmin]);
  const affiliations = useLoad(() => api.get(`/institutions/${encodeURIComponent(inst)}/affiliations`), [inst]);
  // a platform admin reviews every institution's queue (new clinics appear nowhere else)
  const pending = useLoad(() => api.get(`/registrations${platformAdmin ? '' : query({ institution: inst })}`), [inst, platformAdmin]);
  const act = useAction();
  const [regNo, setRegNo] = useState('');
  const [roles, setRoles] = useState(['doctor']);
  const [rejection, setRejection] = useState('identity_not_confirmed');
  const offered = platformAdmin ? PLATFORM_ROLES : CLINICAL_ROLES;

  const decide = (registration, verdict) =>
    act.run(async () => {
      await api.post(`/registrations/${registration.registration_id}/${verdict}`, verdict === 'reject' ? { reason: rejection } : undefined);
      pending.reload();
      affiliations.reload();
      return t(verdict === 'approve' ? 'admin.approved' : 'admin.rejected', { reg: registration.reg_no });
    });

  const claimed = (p) => (p.new_institution_name ? t('admin.newClinic', { id: p.institution, name: p.new_institution_name }) : p.institution);

  return (
    <Page title={t('admin.title', { institution: inst })}>
      {typeof act.done === 'string' && <Status>{act.done}</Status>}
      <Problem error={act.error} />
      {platformAdmin && (
        <form class="form inline" onSubmit={(e) => e.preventDefault()}>
          <Problem error={institutions.error} />
          <Field label={t('common.institution')} hint={t('admin.pick.hint')}>
            {(props) => (
              <select {...props} name="institution" value={inst} onChange={(e) => { act.reset(); setInst(e.currentTarget.value); }}>
                {[...new Set([me.institution, ...(institutions.data ?? []).map((i) => i.id)])].map((id) => {
                  const found = (institutions.data ?? []).find((i) => i.id === id);
                  return (
                    <option key={id} value={id}>
                      {found ? `${found.name} (${id}) · ${t(`institutionStatus.${found.status}`)}` : id}
                    </option>
                  );
                })}
              </select>
            )}
          </Field>
        </form>
      )}
      <h2>{t('admin.pending')}</h2>
      <Problem error={pending.error} />
      <Field label={t('admin.rejectReason')}>
        {(props) => (
          <select {...props} value={rejection} onChange={(e) => setRejection(e.currentTarget.value)}>
            {REJECTIONS.map((r) => (
              <option key={r} value={r}>
                {t(`rejection.${r}`)}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Table
        caption={t(platformAdmin ? 'admin.pending.captionAll' : 'admin.pending.caption')}
        columns={[
          { key: 'reg', label: t('common.regNo'), render: (p) => p.reg_no },
          { key: 'name', label: t('admin.registerName'), render: (p) => (p.register_entry ? `${p.register_entry.name_en} ${p.register_entry.name_zh}` : t('admin.notOnRegister')) },
          { key: 'status', label: t('admin.registerStatus'), render: (p) => (p.register_entry ? t(`registerStatus.${p.register_entry.status}`) : '') },
          { key: 'specialties', label: t('admin.specialties'), render: (p) => (p.register_entry?.specialties ?? []).join(', ') },
          ...(platformAdmin ? [{ key: 'institution', label: t('admin.claimed'), render: claimed }] : []),
          { key: 'at', label: t('common.when'), render: (p) => formatTime(p.submitted_at) },
          {
            key: 'act',
            label: t('common.actions'),
            render: (p) => (
              <span class="actions">
                <button type="button" onClick={() => decide(p, 'approve')} disabled={act.pending}>
                  {t('admin.approve')} <span class="visually-hidden">{p.reg_no}</span>
                </button>
                <button type="button" class="secondary" onClick={() => decide(p, 'reject')} disabled={act.pending}>
                  {t('admin.reject')} <span class="visually-hidden">{p.reg_no}</span>
                </button>
              </span>
            ),
          },
        ]}
        rows={(pending.data ?? []).map((p) => ({ ...p, key: p.registration_id }))}
        empty={t('admin.pending.empty')}
      />
      <h2>{t('admin.affiliations')}</h2>
      <Problem error={affiliations.error} />
      <Table
        caption={t('admin.affiliations.caption')}
        columns={[
          { key: 'member', label: t('admin.member'), render: (a) => (a.member.startsWith('sub:') ? t('admin.staffMember') : a.member) },
          { key: 'roles', label: t('admin.roles'), render: (a) => a.roles.map((r) => t(`userRole.${r}`)).join(', ') },
          { key: 'status', label: t('common.status'), render: (a) => t(`affiliationStatus.${a.status}`) },
          {
            key: 'act',
            label: t('common.actions'),
            render: (a) =>
              a.status === 'active' && REG_NO.test(a.member) ? (
                <button
                  type="button"
                  class="secondary"
                  disabled={act.pending}
                  onClick={() => act.run(async () => {
                    await api.del(`/institutions/${encodeURIComponent(inst)}/affiliations/${a.member}`);
                    affiliations.reload();
                    return t('admin.removed', { reg: a.member });
                  })}
                >
                  {t('admin.remove')} <span class="visually-hidden">{a.member}</span>
                </button>
              ) : null,
          },
        ]}
        rows={(affiliations.data ?? []).map((a) => ({ ...a, key: a.member }))}
        empty={t('admin.affiliations.empty')}
      />
      <h3>{t('admin.affiliate')}</h3>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          const reg = regNo.trim().toUpperCase();
          act.run(async () => {
            await api.json('PUT', `/institutions/${encodeURIComponent(inst)}/affiliations/${reg}`, { body: { roles } });
            affiliations.reload();
            return t('admin.affiliated', { reg });
          });
        }}
      >
        <Field label={t('common.regNo')} hint={t('admin.regNo.hint')}>
          {(props) => <input {...props} name="reg_no" required pattern="[A-Za-z]{1,2}[0-9]{4,6}" value={regNo} onInput={(e) => setRegNo(e.currentTarget.value)} />}
        </Field>
        <fieldset>
          <legend>{t('admin.roles')}</legend>
          {offered.map((r) => (
            <label key={r} class="check">
              <input
                type="checkbox"
                checked={roles.includes(r)}
                onChange={(e) => setRoles(e.currentTarget.checked ? [...roles, r] : roles.filter((x) => x !== r))}
              />
              {t(`userRole.${r}`)}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={act.pending || !roles.length}>
          {t('admin.affiliate.submit')}
        </button>
      </form>
    </Page>
  );
}

const METRICS = ['referral_decision_hours', 'message_response_minutes', 'message_response_rate', 'record_accesses_per_episode', 'summon_to_join_minutes', 'break_glass_uses'];

export function Metrics() {
  const { t, api, me, formatTime } = useHub();
  const auditor = me.roles.includes('auditor');
  const [period, setPeriod] = useState('week');
  const [institution, setInstitution] = useState(auditor ? '' : me.institution);
  const data = useLoad(() => api.get(`/metrics?period=${period}${institution ? `&institution=${institution}` : ''}`), [period, institution]);
  const fmt = (v) => (v == null ? '—' : new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(v));
  const rows = data.data?.rows ?? [];
  return (
    <Page title={t('metrics.title')}>
      <form class="form inline" onSubmit={(e) => e.preventDefault()}>
        <Field label={t('metrics.period')}>
          {(props) => (
            <select {...props} value={period} onChange={(e) => setPeriod(e.currentTarget.value)}>
              {['day', 'week', 'all'].map((p) => (
                <option key={p} value={p}>
                  {t(`period.${p}`)}
                </option>
              ))}
            </select>
          )}
        </Field>
        {auditor && (
          <Field label={t('common.institution')} hint={t('metrics.institution.hint')}>
            {(props) => <input {...props} value={institution} onChange={(e) => setInstitution(e.currentTarget.value.trim())} />}
          </Field>
        )}
      </form>
      <Problem error={data.error} />
      {data.data && (
        <>
          <p>{t('metrics.window', { since: formatTime(data.data.since), until: formatTime(data.data.until), entries: data.data.entries, size: data.data.tree_size })}</p>
          <Table
            caption={t('metrics.caption')}
            columns={[
              { key: 'metric', label: t('metrics.metric'), render: (r) => (METRICS.includes(r.metric) ? t(`metric.${r.metric}`) : r.metric) },
              { key: 'period', label: t('metrics.period'), render: (r) => `${t(`period.${r.period}`)}${r.start ? ` · ${formatTime(r.start)}` : ''}` },
              { key: 'count', label: t('metrics.count'), render: (r) => fmt(r.count) },
              { key: 'p50', label: 'p50', render: (r) => fmt(r.p50) },
              { key: 'p90', label: 'p90', render: (r) => fmt(r.p90) },
            ]}
            rows={rows.map((r, i) => ({ ...r, key: `${r.metric}-${r.period}-${r.start}-${i}` }))}
            empty={t('metrics.empty')}
          />
        </>
      )}
    </Page>
  );
}
