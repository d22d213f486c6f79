import React, { useState } from 'react';
import { clusterStateLabel, formatBytes } from '../logic';
import type { ICluster } from '../service';

export interface IClusterActions {
  scale: (id: string, n: number) => void;
  adapt: (id: string, minimum: number, maximum: number) => void;
  stop: (id: string) => void;
  openDashboard: (link: string) => void;
  insertConnectCode: (address: string, credentials?: string | null) => void;
}

/** One cluster: totals, its workers, and the actions on it. */
export function ClusterCard(props: { cluster: ICluster; actions: IClusterActions }): JSX.Element {
  const c = props.cluster;
  const a = props.actions;
  const [size, setSize] = useState(c.n_workers || 1);
  const [min, setMin] = useState(1);
  const [max, setMax] = useState(Math.max(2, c.n_workers));
  const state = clusterStateLabel(c.state);
  // a sidebar cluster this server holds a Client for (launched here, or re-attached)
  const controlled = c.origin === 'server' && c.state !== 'orphaned';
  return (
    <div className="lepton-ClusterCard" data-cluster-id={c.id}>
      <div className="lepton-ClusterCard-header">
        <span className="lepton-ClusterCard-title">
          {c.kind} · {c.id}
        </span>
        {state ? (
          <span className={`lepton-ClusterCard-state lepton-state-${c.state}`} title={state.title}>
            {state.text}
          </span>
        ) : null}
        <code className="lepton-ClusterCard-address">{c.scheduler_address}</code>
        {c.origin !== 'server' ? (
          <span className="lepton-ClusterCard-owner" title={c.pid ? `process ${c.pid}` : undefined}>
            launched by {c.owner ?? `process ${c.pid ?? '?'}`}
          </span>
        ) : null}
      </div>
      {controlled ? (
        <>
      <div className="lepton-ClusterCard-totals">
        <span className="lepton-nworkers">{c.n_workers} workers</span> · <span>{c.threads} threads</span> · <span>{formatBytes(c.memory)}</span> ·{' '}
        <span>{c.gpus} GPUs</span>
        {c.options.adapt ? <span className="lepton-adaptive"> · adaptive</span> : null}
      </div>
      <table className="lepton-Workers">
        <thead>
          <tr>
            <th>worker</th>
            <th>threads</th>
            <th>memory</th>
            <th>GPU</th>
          </tr>
        </thead>
        <tbody>
          {c.workers.map(w => (
            <tr key={w.address} className="lepton-Worker">
              <td title={w.address}>{w.address.replace(/^tcp:\/\//, '')}</td>
              <td>{w.nthreads ?? '-'}</td>
              <td>{formatBytes(w.memory_limit)}</td>
              <td>{w.gpu_name ? `${w.gpu_name} (${formatBytes(w.gpu_memory)})` : '-'}</td>
            </tr>
          ))}
        </tbody>
      </table>
        </>
      ) : null}
      {controlled ? (
        <>
      <div className="lepton-ClusterCard-row">
        <label>
          workers
          <input className="jp-mod-styled lepton-scale-n" type="number" min={0} value={size} onChange={e => setSize(Number(e.target.value))} />
        </label>
        <button className="jp-Button jp-mod-styled lepton-scale" onClick={() => a.scale(c.id, size)}>
          Scale
        </button>
      </div>
      <div className="lepton-ClusterCard-row">
        <label>
          min
          <input className="jp-mod-styled lepton-adapt-min" type="number" min={0} value={min} onChange={e => setMin(Number(e.target.value))} />
        </label>
        <label>
          max
          <input className="jp-mod-styled lepton-adapt-max" type="number" min={0} value={max} onChange={e => setMax(Number(e.target.value))} />
        </label>
        <button className="jp-Button jp-mod-styled lepton-adapt" onClick={() => a.adapt(c.id, min, max)}>
          Adapt
        </button>
      </div>
        </>
      ) : null}
      <div className="lepton-ClusterCard-row">
        <button className="jp-Button jp-mod-styled lepton-insert" disabled={!c.scheduler_address} onClick={() => c.scheduler_address && a.insertConnectCode(c.scheduler_address, c.credentials)}>
          Insert connect code
        </button>
        <button className="jp-Button jp-mod-styled lepton-dashboard" disabled={!c.dashboard_link} onClick={() => c.dashboard_link && a.openDashboard(c.dashboard_proxy ?? c.dashboard_link)}>
          Dashboard
        </button>
        <button className="jp-Button jp-mod-styled jp-mod-warn lepton-stop" onClick={() => a.stop(c.id)}>
          Stop
        </button>
      </div>
    </div>
  );
}
