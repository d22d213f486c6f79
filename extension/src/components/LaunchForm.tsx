import React, { useState } from 'react';
import type { ILaunchOptions } from '../service';
import { ProfileInput } from './ProfileInput';

export interface ILaunchFormProps {
  defaultWorkers: number;
  busy: boolean;
  onLaunch: (options: ILaunchOptions) => void;
}

/** Workers, threads, GPU mode and an optional profile name. */
export function LaunchForm(props: ILaunchFormProps): JSX.Element {
  const [workers, setWorkers] = useState(props.defaultWorkers);
  const [threads, setThreads] = useState(1);
  const [gpu, setGpu] = useState<'auto' | 'on' | 'off'>('auto');
  const [profile, setProfile] = useState('');
  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    props.onLaunch({ n_workers: workers, threads_per_worker: threads, gpu, profile: profile.trim() || undefined });
  };
  return (
    <form className="lepton-LaunchForm" onSubmit={submit}>
      <label>
        Workers
        <input className="jp-mod-styled lepton-workers" type="number" min={1} value={workers} onChange={e => setWorkers(Number(e.target.value))} />
      </label>
      <label>
        Threads
        <input className="jp-mod-styled lepton-threads" type="number" min={1} value={threads} onChange={e => setThreads(Number(e.target.value))} />
      </label>
      <label>
        GPU
        <select className="jp-mod-styled lepton-gpu" value={gpu} onChange={e => setGpu(e.target.value as 'auto' | 'on' | 'off')}>
          <option value="auto">auto</option>
          <option value="on">on</option>
          <option value="off">off</option>
        </select>
      </label>
      <label>
        Profile
        <ProfileInput value={profile} onChange={setProfile} />
      </label>
      <button className="jp-Button jp-mod-styled jp-mod-accept lepton-launch" type="submit" disabled={props.busy}>
        {props.busy ? 'Launching…' : 'Launch cluster'}
      </button>
    </form>
  );
}
