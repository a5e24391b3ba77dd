/** Consultation groups: mine, one group (members, its records, summon by specialty,
 * leave, the messaging room), and creating one for a patient. */
import { useState } from 'preact/hooks';
import { Link, useLocation } from 'wouter-preact';

import { Field, Page, Problem, Status, Table, useAction, useLoad } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';
import { RecordTable } from './records.jsx';

export function GroupList() {
  const { t, api, formatTime } = useHub();
  const groups = useLoad(() => api.get('/groups'), []);
  const [, navigate] = useLocation();
  const [patient, setPatient] = useState('');
  const [title, setTitle] = useState('');
  const create = useAction();
  const submit = (event) => {
    event.preventDefault();
    create.run(async () => {
      const group = await api.post('/groups', { patient_id: patient.trim(), title: title.trim() });
      navigate(`/groups/${group.group_id}`);
    });
  };
  return (
    <Page title={t('groups.title')}>
      <Problem error={groups.error} />
      <Table
        caption={t('groups.caption')}
        columns={[
          { key: 'title', label: t('group.title'), render: (g) => <Link href={`/groups/${g.group_id}`}>{g.title}</Link> },
          { key: 'patient', label: t('common.patient'), render: (g) => <Link href={`/patients/${g.patient_id}`}>{g.patient_id}</Link> },
          { key: 'role', label: t('group.myRole'), render: (g) => t(`role.${g.role}`) },
          { key: 'status', label: t('common.status'), render: (g) => t(`status.${g.status}`) },
          { key: 'at', label: t('common.created'), render: (g) => formatTime(g.created_at) },
        ]}
        rows={(groups.data?.groups ?? []).map((g) => ({ ...g, key: g.group_id }))}
        empty={groups.loading ? t('common.loading') : t('groups.empty')}
      />
      <h2>{t('groups.new')}</h2>
      <form class="form" onSubmit={submit}>
        <Field label={t('common.patient')} hint={t('groups.new.patientHint')}>
          {(props) => <input {...props} name="patient" required value={patient} onInput={(e) => setPatient(e.currentTarget.value)} />}
        </Field>
        <Field label={t('group.title')}>
          {(props) => <input {...props} name="title" required maxLength={120} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />}
        </Field>
        <button type="submit" disabled={create.pending}>
          {t('groups.new.submit')}
        </button>
      </form>
      <Problem error={create.error} />
    </Page>
  );
}

export function GroupDetail({ id }) {
  const { t, api, formatTime, me, config } = useHub();
  const group = useLoad(() => api.get(`/groups/${id}`), [id]);
  const records = useLoad(() => api.get(`/groups/${id}/records`), [id]);
  const [specialty, setSpecialty] = useState('');
  const [count, setCount] = useState('1');
  const summon = useAction();
  const membership = useAction();
  const [, navigate] = useLocation();

  const g = group.data;
  const mine = g?.members.find((m) => m.reg_no === me.reg_no);
  const lead = mine?.role === 'lead' && mine?.state === 'active';
  const room = g?.messaging_room ?? g?.room_id ?? null;

  const doSummon = (event) => {
    event.preventDefault();
    summon.run(async () => {
      const result = await api.post(`/groups/${id}/summon`, {
        specialties: specialty.split(',').map((s) => s.trim()).filter(Boolean),
        count: Number(count),
      });
      group.reload();
      return t('group.summoned', { count: result.invited.length });
    });
  };

  return (
    <Page title={g ? g.title : t('group.heading')}>
      <Problem error={group.error} />
      {group.error?.status === 403 && (
        // an invited doctor may not view the group before joining: offer to accept
        <p class="actions">
          <button
            type="button"
            disabled={membership.pending}
            onClick={() => membership.run(async () => {
              await api.post(`/groups/${id}/accept`);
              group.reload();
              records.reload();
              return t('group.joinedNow');
            })}
          >
            {t('group.acceptInvitation')}
          </button>
        </p>
      )}
      {typeof membership.done === 'string' && <Status>{membership.done}</Status>}
      <Problem error={membership.error} />
      {g && (
        <>
          <dl class="facts">
            <dt>{t('common.patient')}</dt>
            <dd>
              <Link href={`/patients/${g.patient_id}`}>{g.patient_id}</Link>
            </dd>
            <dt>{t('common.status')}</dt>
            <dd>{t(`status.${g.status}`)}</dd>
            <dt>{t('common.institution')}</dt>
            <dd>{g.institution}</dd>
            <dt>{t('group.messaging')}</dt>
            <dd>
              {room ? (
                <a href={`${config.matrixLinkBase || 'https://matrix.to/#/'}${encodeURIComponent(room)}`} rel="noopener noreferrer" target="_blank">
                  {t('group.openRoom')}
                </a>
              ) : (
                t('group.noRoom')
              )}
            </dd>
          </dl>
          {mine?.state === 'invited' && g.status === 'open' && (
            <p class="actions">
              <button
                type="button"
                disabled={membership.pending}
                onClick={() => membership.run(async () => {
                  await api.post(`/groups/${id}/accept`);
                  group.reload();
                  records.reload();
                  return t('inbox.accepted', { title: g.title });
                })}
              >
                {t('group.acceptInvitation')}
              </button>
            </p>
          )}
          <h2>{t('group.members')}</h2>
          <Table
            caption={t('group.members.caption')}
            columns={[
              { key: 'reg', label: t('common.regNo'), render: (m) => m.reg_no },
              { key: 'role', label: t('group.role'), render: (m) => t(`role.${m.role}`) },
              { key: 'state', label: t('common.status'), render: (m) => t(`membership.${m.state}`) },
              { key: 'inst', label: t('common.institution'), render: (m) => m.institution },
              { key: 'joined', label: t('group.joined'), render: (m) => formatTime(m.joined_at) },
              {
                key: 'act',
                label: t('common.actions'),
                render: (m) =>
                  lead && g.status === 'open' && m.role !== 'lead' && (m.state === 'active' || m.state === 'invited') ? (
                    <button
                      type="button"
                      class="secondary"
                      disabled={membership.pending}
                      onClick={() => membership.run(async () => {
                        await api.del(`/groups/${id}/members/${m.reg_no}`);
                        group.reload();
                        return t('group.removed', { reg: m.reg_no });
                      })}
                    >
                      {t('group.remove')} <span class="visually-hidden">{m.reg_no}</span>
                    </button>
                  ) : (
                    ''
                  ),
              },
            ]}
            rows={g.members.map((m) => ({ ...m, key: m.reg_no }))}
            empty={t('group.members.empty')}
          />
          {lead && g.status === 'open' && (
            <>
              <h2>{t('group.summon')}</h2>
              <form class="form" onSubmit={doSummon}>
                <Field label={t('group.summon.specialties')} hint={t('group.summon.hint')}>
                  {(props) => <input {...props} name="specialties" required value={specialty} onInput={(e) => setSpecialty(e.currentTarget.value)} />}
                </Field>
                <Field label={t('group.summon.count')}>
                  {(props) => <input {...props} name="count" type="number" min={1} max={10} required value={count} onInput={(e) => setCount(e.currentTarget.value)} />}
                </Field>
                <button type="submit" disabled={summon.pending}>
                  {t('group.summon.submit')}
                </button>
              </form>
              {typeof summon.done === 'string' && <Status>{summon.done}</Status>}
              <Problem error={summon.error} />
            </>
          )}
          <h2>{t('group.records')}</h2>
          <Problem error={records.error} />
          {records.data && <RecordTable records={records.data.records} caption={t('group.records.caption')} />}
          <div class="actions">
            <Link href={`/referrals/new?patient=${encodeURIComponent(g.patient_id)}&group=${g.group_id}`}>{t('group.refer')}</Link>
            {mine?.state === 'active' && mine.role !== 'lead' && (
              <button
                type="button"
                class="secondary"
                onClick={() => membership.run(async () => {
                  await api.post(`/groups/${id}/leave`);
                  navigate('/groups');
                })}
              >
                {t('group.leave')}
              </button>
            )}
          </div>
        </>
      )}
    </Page>
  );
}
