import React, { useCallback, useEffect, useRef, useState } from 'react';
import { LeptonApiError } from '../errors';
import { newlyFinished } from '../logic';
import type { ICluster, IJob, ILaunchOptions, ILeptonService, ISchedule } from '../service';
import { ClusterCard } from './ClusterCard';
import { JobsSection } from './JobsSection';
import { LaunchForm } from './LaunchForm';
import { ICurrentNotebook, SchedulesSection } from './SchedulesSection';

export interface ISidebarProps {
  service: ILeptonService;
  pollMs: number;
  defaultWorkers: number;
  openPath: (path: string) => void;
  openDashboard: (link: string) => void;
  insertConnectCode: (address: string, credentials?: string | null) => void;
  /** The active notebook (for "Schedule open notebook"), or null. */
  currentNotebook: () => Promise<ICurrentNotebook | null>;
  /** Told about each job that finished since the last poll (a JupyterLab notification). */
  onJobFinished: (job: IJob) => void;
}

function message(error: unknown): string {
  return error instanceof LeptonApiError ? error.userMessage : String((error as Error)?.message ?? error);
}

/** The Lepton panel: clusters of this server and notebook jobs, refreshed by polling. */
export function Sidebar(props: ISidebarProps): JSX.Element {
  const { service } = props;
  const [clusters, setClusters] = useState<ICluster[]>([]);
  const [jobs, setJobs] = useState<IJob[]>([]);
  const [schedules, setSchedules] = useState<ISchedule[]>([]);
  const seen = useRef<Map<string, string> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [launching, setLaunching] = useState(false);
  const [now, setNow] = useState(Date.now() / 1000);

  // Clusters and jobs refresh independently: a failing jobs store must not hide the clusters.
  const refresh = useCallback(async () => {
    const [c, j, s] = await Promise.allSettled([service.listClusters(), service.listJobs({ limit: 50 }), service.listSchedules()]);
    if (c.status === 'fulfilled') {
      setClusters(c.value);
    }
    if (j.status === 'fulfilled') {
      setJobs(j.value);
      if (seen.current !== null) {
        newlyFinished(seen.current, j.value).forEach(props.onJobFinished);
      }
      // A job first seen already finished (the page was reloaded) is not announced.
      seen.current = new Map(j.value.map(job => [job.id, job.status]));
    }
    if (s.status === 'fulfilled') {
      setSchedules(s.value);
    }
    const failed = [c, j, s].find(r => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      setError(message(failed.reason));
    }
    setNow(Date.now() / 1000);
  }, [service, props.onJobFinished]);

  useEffect(() => {
    void refresh();
    const timer = window.setInterval(() => void refresh(), props.pollMs);
    return () => window.clearInterval(timer);
  }, [refresh, props.pollMs]);

  const act = (work: () => Promise<unknown>) => async () => {
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(message(e));
    }
    await refresh();
  };

  const launch = (options: ILaunchOptions): void => {
    setLaunching(true);
    void act(() => service.launchCluster(options))().finally(() => setLaunching(false));
  };

  return (
    <div className="lepton-Sidebar">
      <header className="lepton-Sidebar-title">Lepton</header>
      {error ? (
        <div className="lepton-Error" role="alert" onClick={() => setError(null)}>
          {error}
        </div>
      ) : null}
      <section className="lepton-Section lepton-Clusters">
        <h3>Clusters</h3>
        <LaunchForm defaultWorkers={props.defaultWorkers} busy={launching} onLaunch={launch} />
        {clusters.length === 0 ? <p className="lepton-empty">No clusters running (launched here or by a notebook).</p> : null}
        {clusters.map(c => (
          <ClusterCard
            key={c.id}
            cluster={c}
            actions={{
              scale: (id, n) => void act(() => service.scaleCluster(id, n))(),
              adapt: (id, lo, hi) => void act(() => service.adaptCluster(id, lo, hi))(),
              stop: id => void act(() => service.stopCluster(id))(),
              openDashboard: props.openDashboard,
              insertConnectCode: props.insertConnectCode
            }}
          />
        ))}
      </section>
      <section className="lepton-Section lepton-SchedulesSection">
        <h3>Schedules</h3>
        <SchedulesSection
          schedules={schedules}
          now={now}
          current={props.currentNotebook}
          actions={{
            create: request => void act(() => service.createSchedule(request))(),
            setPaused: (id, paused) => void act(() => service.patchSchedule(id, { paused }))(),
            runNow: id => void act(() => service.runSchedule(id))(),
            remove: id => void act(() => service.removeSchedule(id))()
          }}
        />
      </section>
      <section className="lepton-Section lepton-JobsSection">
        <h3>
          Jobs{' '}
          <button className="jp-Button jp-mod-styled lepton-refresh" onClick={() => void refresh()} title="Refresh">
            ↻
          </button>
        </h3>
        <JobsSection
          jobs={jobs}
          now={now}
          actions={{
            openOutput: props.openPath,
            rerun: id => void act(() => service.rerunJob(id))(),
            cancel: id => void act(() => service.cancelJob(id))()
          }}
        />
      </section>
    </div>
  );
}
