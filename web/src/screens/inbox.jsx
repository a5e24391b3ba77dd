/** The doctor's inbox: summons (invitations as an expert), invitations, and referrals
 * waiting for a decision. Accepting an invitation joins the group on the next request. */
import { Link } from 'wouter-preact';

import { Page, Problem, Status, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';

export function Inbox() {
  const { t, api, formatTime } = useHub();
  const invitations = useLoad(() => api.get('/invitations'), []);
  const referrals = useLoad(() => api.get('/referrals?box=incoming'), []);
  const accept = useAction();

  const pending = invitations.data?.invitations ?? [];
  const summons = pending.filter((g) => g.role === 'invited_expert');
  const others = pending.filter((g) => g.role !== 'invited_expert');
  const waiting = (referrals.data?.referrals ?? []).filter((r) => r.status === 'requested');

  const invitationColumns = [
    { key: 'title', label: t('group.title'), render: (g) => g.title },
    { key: 'patient', label: t('common.patient'), render: (g) => g.patient_id },
    { key: 'from', label: t('inbox.invitedBy'), render: (g) => g.invited_by },
    { key: 'at', label: t('common.when'), render: (g) => formatTime(g.invited_at) },
    {
      key: 'act',
      label: t('common.actions'),
      render: (g) => (
        <button
          type="button"
          disabled={accept.pending}
          onClick={() => accept.run(async () => {
            await api.post(`/groups/${g.group_id}/accept`);
            invitations.reload();
            return t('inbox.accepted', { title: g.title });
          })}
        >
          {t('inbox.accept')} <span class="visually-hidden">{g.title}</span>
        </button>
      ),
    },
  ];

  return (
    <Page title={t('inbox.title')}>
      {typeof accept.done === 'string' && <Status>{accept.done}</Status>}
      <Problem error={accept.error} />
      <h2>{t('inbox.summons')}</h2>
      <Problem error={invitations.error} />
      <Table caption={t('inbox.summons.caption')} columns={invitationColumns} rows={summons.map((g) => ({ ...g, key: g.group_id }))} empty={t('inbox.summons.empty')} />
      <h2>{t('inbox.invitations')}</h2>
      <Table caption={t('inbox.invitations.caption')} columns={invitationColumns} rows={others.map((g) => ({ ...g, key: g.group_id }))} empty={t('inbox.invitations.empty')} />
      <h2>{t('inbox.referrals')}</h2>
      <Problem error={referrals.error} />
      <Table
        caption={t('inbox.referrals.caption')}
        columns={[
          { key: 'id', label: t('referral.label'), render: (r) => <Link href={`/referrals/${r.referral_id}`}>{t('referral.from', { institution: r.from_institution })}</Link> },
          { key: 'urgency', label: t('referral.urgency'), render: (r) => t(`urgency.${r.urgency}`) },
          { key: 'specialty', label: t('referral.specialty'), render: (r) => r.target.specialty || r.to_department },
          { key: 'at', label: t('common.when'), render: (r) => formatTime(r.created_at) },
        ]}
        rows={waiting.map((r) => ({ ...r, key: r.referral_id }))}
        empty={t('inbox.referrals.empty')}
      />
    </Page>
  );
}
