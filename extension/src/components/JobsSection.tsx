import React from 'react';
import { formatDuration, formatKeyValues, isActive, jobDuration } from '../logic';
import type { IJob } from '../service';

export interface IJobActions {
  openOutput: (path: string) => void;
  rerun: (id: string) => void;
  cancel: (id: string) => void;
}

function recorded(job: IJob): Record<string, unknown> | null {
  return Object.keys(job.records ?? {}).length ? job.records : null;
}

export function JobsSection(props: { jobs: IJob[]; actions: IJobActions; now: number }): JSX.Element {
  if (props.jobs.length === 0) {
    return <p className="lepton-empty">No jobs yet. Use “Run as job…” on a notebook.</p>;
  }
  return (
    <ul className="lepton-Jobs">
      {props.jobs.map(job => (
        <li key={job.id} className={`lepton-Job lepton-status-${job.status}`} data-job-id={job.id}>
          <div className="lepton-Job-header">
            <span className="lepton-Job-status">{job.status}</span>
            <span className="lepton-Job-notebook" title={job.notebook}>
              {job.notebook.split('/').pop()}
            </span>
            <span className="lepton-Job-duration">{formatDuration(jobDuration(job as unknown as Record<string, unknown>, props.now))}</span>
          </div>
          <div className="lepton-Job-params" title="parameters">
            {formatKeyValues(job.parameters) || 'no parameters'}
          </div>
          {recorded(job) ? <div className="lepton-Job-values" title="recorded values">{formatKeyValues(recorded(job))}</div> : null}
          {job.error ? <div className="lepton-Job-error">{String(job.error)}</div> : null}
          <div className="lepton-Job-actions">
            <button className="jp-Button jp-mod-styled lepton-open-output" disabled={!job.output_path} onClick={() => job.output_path && props.actions.openOutput(job.output_path)}>
              Open output
            </button>
            {isActive(job.status) ? (
              <button className="jp-Button jp-mod-styled jp-mod-warn lepton-cancel" onClick={() => props.actions.cancel(job.id)}>
                Cancel
              </button>
            ) : (
              <button className="jp-Button jp-mod-styled lepton-rerun" onClick={() => props.actions.rerun(job.id)}>
                Rerun
              </button>
            )}
          </div>
        </li>
      ))}
    </ul>
  );
}
