import React, { useCallback, useEffect, useState } from 'react';
import { LeptonApiError } from '../errors';
import type { ICluster, IJob, ILaunchOptions, ILeptonService } from '../service';
import { ClusterCard } from './ClusterCard';
import { JobsSection } from './JobsSection';
import { LaunchForm } from './LaunchForm';

export interface ISidebarProps {
  service: ILeptonService;
  pollMs: number;
  defaultWorkers: number;
  openPath: (path: string) => void;
  openDashboard: (link: string) => void;
  insertConnectCode: (address: string, credentials?: string | null) => void;
}

function message(error: unknown): string {
  return error instanceof LeptonApiError ? error.userMessage : String((error as Error)?.message ?? error);
}

/** The Lepton panel: clusters of this server and notebook jobs, refreshed by polling. */
export function Sidebar(props: ISidebarProps): JSX.Element {
  const { service } = props;
  const [clusters, setClusters] = useState<ICluster[]>([]);
  const [jobs, setJobs] = useState<IJob[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [launching, setLaunching] = useState(false);
  const [now, setNow] = useState(Date.now() / 1000);

  // Clusters and jobs refresh independently: a failing jobs store must not hide the clusters.
  const refresh = useCallback(async () => {
    const [c, j] = await Promise.allSettled([service.listClusters(), service.listJobs({ limit: 50 })]);
    if (c.status === 'fulfilled') {
      setClusters(c.value);
    }
    if (j.status === 'fulfilled') {
      setJobs(j.value);
    }
    const failed = [c, j].find(r => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      setError(message(failed.reason));
    }
    setNow(Date.now() / 1000);
  }, [service]);

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
        {clusters.length === 0 ? <p className="lepton-empty">No clusters launched from this server.</p> : null}
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
