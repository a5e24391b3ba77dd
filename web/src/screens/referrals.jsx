/** Referrals: incoming and outgoing lists, sending one (with its legal basis), and one
 * referral: its clinical question, accept (joins the patient's group), decline with a
 * reason, and the PDF letter. */
import { useState } from 'preact/hooks';
import { Link, useLocation, useSearch } from 'wouter-preact';

import { Field, Page, Problem, Status, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';

const URGENCIES = ['routine', 'urgent', 'emergency'];
const BASES = ['referral_for_care', 'emergency'];
const NOTICES = ['informed', 'consented', 'none'];
const DECLINE_REASONS = ['no_capacity', 'not_indicated', 'wrong_specialty', 'more_information_needed', 'patient_declined', 'other'];

function ReferralTable({ box }) {
  const { t, api, formatTime } = useHub();
  const list = useLoad(() => api.get(`/referrals?box=${box}`), [box]);
  return (
    <>
      <Problem error={list.error} />
      <Table
        caption={t(`referrals.${box}.caption`)}
        columns={[
          { key: 'id', label: t('referral.label'), render: (r) => <Link href={`/referrals/${r.referral_id}`}>{box === 'incoming' ? t('referral.from', { institution: r.from_institution }) : t('referral.to', { institution: r.target.institution })}</Link> },
          { key: 'status', label: t('common.status'), render: (r) => t(`referralStatus.${r.status}`) },
          { key: 'urgency', label: t('referral.urgency'), render: (r) => t(`urgency.${r.urgency}`) },
          { key: 'specialty', label: t('referral.specialty'), render: (r) => r.target.specialty },
          { key: 'at', label: t('common.when'), render: (r) => formatTime(r.created_at) },
        ]}
        rows={(list.data?.referrals ?? []).map((r) => ({ ...r, key: r.referral_id }))}
        empty={list.loading ? t('common.loading') : t('referrals.empty')}
      />
    </>
  );
}

export function ReferralList() {
  const { t } = useHub();
  return (
    <Page title={t('referrals.title')} actions={<Link href="/referrals/new" class="button">{t('referrals.new')}</Link>}>
      <h2>{t('referrals.incoming')}</h2>
      <ReferralTable box="incoming" />
      <h2>{t('referrals.outgoing')}</h2>
      <ReferralTable box="outgoing" />
    </Page>
  );
}

export function NewReferral() {
  const { t, api } = useHub();
  const params = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const [form, setForm] = useState({
    patient: params.get('patient') ?? '',
    group: params.get('group') ?? '',
    institution: '',
    specialty: '',
    urgency: 'routine',
    question: '',
    basis: 'referral_for_care',
    notice: 'informed',
  });
  const send = useAction();
  const set = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  const submit = (event) => {
    event.preventDefault();
    send.run(async () => {
      const referral = await api.post('/referrals', {
        patient_id: form.patient.trim(),
        ...(form.group ? { group_id: form.group } : {}),
        target: { institution: form.institution.trim(), specialty: form.specialty.trim() },
        urgency: form.urgency,
        clinical_question: form.question,
        legal_basis: { basis: form.basis, patient: form.basis === 'emergency' ? 'none' : form.notice },
      });
      navigate(`/referrals/${referral.referral_id}`);
    });
  };
  const select = (name, options, prefix) => (props) => (
    <select {...props} name={name} value={form[name]} onChange={set(name)}>
      {options.map((o) => (
        <option key={o} value={o}>
          {t(`${prefix}.${o}`)}
        </option>
      ))}
    </select>
  );
  return (
    <Page title={t('referrals.new')}>
      <form class="form" onSubmit={submit}>
        <Field label={t('common.patient')}>{(props) => <input {...props} name="patient" required value={form.patient} onInput={set('patient')} />}</Field>
        <Field label={t('referral.institution')} hint={t('referral.institution.hint')}>
          {(props) => <input {...props} name="institution" required pattern="[a-z0-9][a-z0-9-]{1,39}" value={form.institution} onInput={set('institution')} />}
        </Field>
        <Field label={t('referral.specialty')}>{(props) => <input {...props} name="specialty" value={form.specialty} onInput={set('specialty')} />}</Field>
        <Field label={t('referral.urgency')}>{select('urgency', URGENCIES, 'urgency')}</Field>
        <Field label={t('referral.question')} hint={t('referral.question.hint')}>
          {(props) => <textarea {...props} name="question" required maxLength={4000} rows={5} value={form.question} onInput={set('question')} />}
        </Field>
        <Field label={t('referral.basis')}>{select('basis', BASES, 'basis')}</Field>
        {form.basis !== 'emergency' && <Field label={t('referral.notice')}>{select('notice', NOTICES, 'notice')}</Field>}
        <button type="submit" disabled={send.pending}>
          {t('referral.send')}
        </button>
      </form>
      <Problem error={send.error} />
    </Page>
  );
}

export function ReferralDetail({ id }) {
  const { t, api, formatTime, me } = useHub();
  const referral = useLoad(() => api.get(`/referrals/${id}`), [id]);
  const act = useAction();
  const letter = useAction();
  const [reason, setReason] = useState(DECLINE_REASONS[0]);
  const r = referral.data;
  const receiving = r && r.status === 'requested' && r.referrer !== me.reg_no;

  const openLetter = () =>
    letter.run(async () => {
      const response = await api.raw('GET', `/referrals/${id}/letter`, { accept: 'application/pdf' });
      const url = URL.createObjectURL(await response.blob());
      return url;
    });

  return (
    <Page title={t('referral.heading')}>
      <Problem error={referral.error} />
      {typeof act.done === 'string' && <Status>{act.done}</Status>}
      <Problem error={act.error} />
      {r && (
        <>
          <dl class="facts">
            <dt>{t('common.status')}</dt>
            <dd id="referral-status">{t(`referralStatus.${r.status}`)}</dd>
            <dt>{t('referral.urgency')}</dt>
            <dd>{t(`urgency.${r.urgency}`)}</dd>
            <dt>{t('common.patient')}</dt>
            <dd>{r.patient_id}</dd>
            <dt>{t('referral.fromLabel')}</dt>
            <dd>{`${r.referrer} · ${r.from_institution}`}</dd>
            <dt>{t('referral.toLabel')}</dt>
            <dd>{[r.target.institution, r.target.specialty, r.target.team].filter(Boolean).join(' · ')}</dd>
            <dt>{t('referral.basis')}</dt>
            <dd>{t(`basis.${r.legal_basis}`)}</dd>
            <dt>{t('common.created')}</dt>
            <dd>{formatTime(r.created_at)}</dd>
            {r.group_id && (
              <>
                <dt>{t('referral.group')}</dt>
                <dd>
                  <Link href={`/groups/${r.group_id}`}>{t('referral.openGroup')}</Link>
                </dd>
              </>
            )}
          </dl>
          <h2>{t('referral.question')}</h2>
          <p class="question">{r.clinical_question}</p>
          {receiving && (
            <div class="actions">
              <button
                type="button"
                disabled={act.pending}
                onClick={() => act.run(async () => {
                  await api.post(`/referrals/${id}/accept`);
                  referral.reload();
                  return t('referral.accepted');
                })}
              >
                {t('referral.accept')}
              </button>
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  act.run(async () => {
                    await api.post(`/referrals/${id}/decline`, { reason });
                    referral.reload();
                    return t('referral.declined');
                  });
                }}
              >
                <Field label={t('referral.declineReason')}>
                  {(props) => (
                    <select {...props} name="reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
                      {DECLINE_REASONS.map((c) => (
                        <option key={c} value={c}>
                          {t(`decline.${c}`)}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                <button type="submit" class="secondary" disabled={act.pending}>
                  {t('referral.decline')}
                </button>
              </form>
            </div>
          )}
          <h2>{t('referral.letter')}</h2>
          <button type="button" class="secondary" onClick={openLetter} disabled={letter.pending}>
            {t('referral.letter.get')}
          </button>
          {typeof letter.done === 'string' && (
            <p role="status">
              <a href={letter.done} target="_blank" rel="noopener" download={`referral-${id}.pdf`}>
                {t('referral.letter.open')}
              </a>
            </p>
          )}
          <Problem error={letter.error} />
          <h2>{t('referral.history')}</h2>
          <ol>
            {r.history.map((h, i) => (
              <li key={i}>
                {`${formatTime(h.at)} · ${t(`referralStatus.${h.to_status}`)} · ${h.actor}`}
              </li>
            ))}
          </ol>
        </>
      )}
    </Page>
  );
}
