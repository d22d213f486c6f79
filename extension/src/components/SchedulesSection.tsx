import React, { useState } from 'react';
import { formatKeyValues, formatUntil } from '../logic';
import type { ISchedule, IScheduleCreate } from '../service';

/** The open notebook, as a schedule would run it (path + its parameters cell's values). */
export interface ICurrentNotebook {
  path: string;
  parameters: Record<string, unknown>;
}

export interface IScheduleActions {
  create: (request: IScheduleCreate) => void;
  setPaused: (id: string, paused: boolean) => void;
  runNow: (id: string) => void;
  remove: (id: string) => void;
}

function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** "Schedule the open notebook": a cron expression and time zone; parameters come from its cell. */
function ScheduleForm(props: { current: () => Promise<ICurrentNotebook | null>; onCreate: IScheduleActions['create'] }): JSX.Element {
  const [cron, setCron] = useState('0 3 * * *');
  const [timezone, setTimezone] = useState(browserTimeZone());
  const [note, setNote] = useState<string | null>(null);
  const submit = async (): Promise<void> => {
    const nb = await props.current();
    if (!nb) {
      setNote('Open a notebook first: the schedule runs the active notebook.');
      return;
    }
    setNote(null);
    props.onCreate({ notebook: nb.path, parameters: nb.parameters, cron: cron.trim(), timezone: timezone.trim() });
  };
  return (
    <div className="lepton-ScheduleForm">
      <label>
        cron
        <input className="lepton-cron jp-mod-styled" type="text" value={cron} onChange={e => setCron(e.target.value)} title="minute hour day month weekday, e.g. 0 3 * * *" />
      </label>
      <label>
        time zone
        <input className="lepton-timezone jp-mod-styled" type="text" value={timezone} onChange={e => setTimezone(e.target.value)} />
      </label>
      <button className="jp-Button jp-mod-styled jp-mod-accept lepton-schedule-create" onClick={() => void submit()} title="Schedule the open notebook with its parameters cell's values">
        Schedule open notebook
      </button>
      {note ? <p className="lepton-help">{note}</p> : null}
    </div>
  );
}

export function SchedulesSection(props: {
  schedules: ISchedule[];
  now: number;
  current: () => Promise<ICurrentNotebook | null>;
  actions: IScheduleActions;
}): JSX.Element {
  const { actions } = props;
  return (
    <>
      <ScheduleForm current={props.current} onCreate={actions.create} />
      {props.schedules.length === 0 ? <p className="lepton-empty">No schedules yet.</p> : null}
      <ul className="lepton-Schedules">
        {props.schedules.map(s => (
          <li key={s.id} className="lepton-Schedule" data-schedule-id={s.id}>
            <div className="lepton-Job-header">
              <span className="lepton-Schedule-name" title={s.notebook}>
                {s.name || s.notebook.split('/').pop()}
              </span>
              <span className="lepton-Schedule-cron" title={s.timezone}>
                {s.cron}
              </span>
            </div>
            <div className="lepton-Job-params" title="parameters">
              {formatKeyValues(s.parameters) || 'no parameters'}
            </div>
            <div className="lepton-help">
              <span className="lepton-Schedule-next">next {s.paused ? 'paused' : formatUntil(s.next_fire, props.now)}</span>
              {' · '}
              <span className="lepton-Schedule-last">last job {s.last_status ?? 'none yet'}</span>
            </div>
            <div className="lepton-Job-actions">
              <button className="jp-Button jp-mod-styled lepton-schedule-pause" onClick={() => actions.setPaused(s.id, !s.paused)}>
                {s.paused ? 'Resume' : 'Pause'}
              </button>
              <button className="jp-Button jp-mod-styled lepton-schedule-run" onClick={() => actions.runNow(s.id)}>
                Run now
              </button>
              <button className="jp-Button jp-mod-styled jp-mod-warn lepton-schedule-remove" onClick={() => actions.remove(s.id)}>
                Delete
              </button>
            </div>
          </li>
        ))}
      </ul>
    </>
  );
}
