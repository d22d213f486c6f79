/**
 * Every HTTP call of the frontend, against `{base_url}lepton/api/`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { errorFromResponse, parseSuccess } from './errors';

export interface IWorker {
  address: string;
  host: string | null;
  nthreads: number | null;
  memory_limit: number | null;
  gpu_name: string | null;
  gpu_memory: number | null;
}

export type ClusterState = 'running' | 're-attached' | 'orphaned';

export interface ICluster {
  id: string;
  kind: string;
  status: 'running' | 'closed';
  scheduler_address: string | null;
  dashboard_link: string | null;
  /** The dashboard through the Jupyter server, relative to its base URL (works on JupyterHub). */
  dashboard_proxy: string | null;
  n_workers: number;
  threads: number;
  memory: number;
  gpus: number;
  workers: IWorker[];
  options: Record<string, unknown>;
  created: number;
  /** 'server': launched from this sidebar; otherwise a notebook's or script's cluster. */
  origin: 'server' | 'kernel' | 'process';
  owner: string | null;
  pid: number | null;
  /**
   * 'running': its owner (this server, a kernel) holds it; 're-attached': launched from the
   * sidebar before a server restart, found again and connected; 'orphaned': a process of it
   * lives but its scheduler does not answer (it can only be stopped).
   */
  state: ClusterState;
  /** The processes stopping a sidebar cluster ends. */
  pids?: number[];
  /** TLS: the scheduler refuses clients without the credentials in this folder. */
  secure?: boolean;
  credentials?: string | null;
  connect_code?: string | null;
}

export interface ILaunchOptions {
  n_workers?: number;
  threads_per_worker?: number;
  gpu?: 'auto' | 'on' | 'off';
  profile?: string;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';

/** A job as the server returns it: the pydantic `JobInfo` of lepton_nb/server/_models.py. */
export interface IJob {
  id: string;
  status: JobStatus;
  notebook: string;
  notebook_abs: string;
  parameters: Record<string, unknown>;
  records: Record<string, unknown>;
  output_path: string | null;
  html_path: string | null;
  created: number;
  started: number | null;
  ended: number | null;
  duration_s: number | null;
  error: string | null;
  error_info: Record<string, unknown> | null;
  seed: number | null;
  kernel: string | null;
  cwd: string | null;
  timeout: number | null;
  rerun_of: string | null;
  schedule_id: string | null;
  profile: string | null;
  cluster: string | null;
  warnings: string[];
}

/** A schedule: `ScheduleInfo` of lepton_nb/server/_models.py. */
export interface ISchedule {
  id: string;
  name: string;
  notebook: string;
  parameters: Record<string, unknown>;
  cron: string;
  timezone: string;
  profile: string | null;
  paused: boolean;
  created: number;
  next_fire: number | null;
  last_fire: number | null;
  last_job: string | null;
  last_status: JobStatus | null;
}

export interface IScheduleCreate {
  notebook: string;
  parameters: Record<string, unknown>;
  cron: string;
  timezone: string;
  profile?: string;
  name?: string;
}

export type ISchedulePatch = Partial<Pick<ISchedule, 'parameters' | 'cron' | 'timezone' | 'paused' | 'name'>>;

/** A cluster profile from dask config (lepton.profiles), as the server describes it. */
export interface IProfile {
  name: string;
  kind: string;
  description: string;
}

export interface IJobFilter {
  status?: string;
  notebook?: string;
  limit?: number;
}

export interface ILeptonService {
  listClusters(): Promise<ICluster[]>;
  launchCluster(options: ILaunchOptions): Promise<ICluster>;
  getCluster(id: string): Promise<ICluster>;
  scaleCluster(id: string, nWorkers: number): Promise<ICluster>;
  adaptCluster(id: string, minimum: number, maximum: number): Promise<ICluster>;
  stopCluster(id: string): Promise<ICluster>;
  listJobs(filter?: IJobFilter): Promise<IJob[]>;
  submitJob(notebook: string, parameters: Record<string, unknown>): Promise<IJob>;
  getJob(id: string): Promise<IJob>;
  cancelJob(id: string): Promise<IJob>;
  rerunJob(id: string): Promise<IJob>;
  listSchedules(): Promise<ISchedule[]>;
  createSchedule(request: IScheduleCreate): Promise<ISchedule>;
  patchSchedule(id: string, patch: ISchedulePatch): Promise<ISchedule>;
  removeSchedule(id: string): Promise<ISchedule>;
  runSchedule(id: string): Promise<IJob>;
}

export class LeptonService implements ILeptonService {
  constructor(private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  listClusters(): Promise<ICluster[]> {
    return this.request('clusters');
  }
  listProfiles(): Promise<IProfile[]> {
    return this.request('profiles');
  }
  launchCluster(options: ILaunchOptions): Promise<ICluster> {
    return this.request('clusters', 'POST', options);
  }
  getCluster(id: string): Promise<ICluster> {
    return this.request(`clusters/${encodeURIComponent(id)}`);
  }
  scaleCluster(id: string, nWorkers: number): Promise<ICluster> {
    return this.request(`clusters/${encodeURIComponent(id)}`, 'PATCH', { n_workers: nWorkers });
  }
  adaptCluster(id: string, minimum: number, maximum: number): Promise<ICluster> {
    return this.request(`clusters/${encodeURIComponent(id)}`, 'PATCH', { adapt: { minimum, maximum } });
  }
  stopCluster(id: string): Promise<ICluster> {
    return this.request(`clusters/${encodeURIComponent(id)}`, 'DELETE');
  }
  listJobs(filter: IJobFilter = {}): Promise<IJob[]> {
    const query = Object.entries(filter)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    return this.request(query ? `jobs?${query}` : 'jobs');
  }
  submitJob(notebook: string, parameters: Record<string, unknown>): Promise<IJob> {
    return this.request('jobs', 'POST', { notebook, parameters });
  }
  getJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}`);
  }
  cancelJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}`, 'DELETE');
  }
  rerunJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}/rerun`, 'POST');
  }
  listSchedules(): Promise<ISchedule[]> {
    return this.request('schedules');
  }
  createSchedule(request: IScheduleCreate): Promise<ISchedule> {
    return this.request('schedules', 'POST', request);
  }
  patchSchedule(id: string, patch: ISchedulePatch): Promise<ISchedule> {
    return this.request(`schedules/${encodeURIComponent(id)}`, 'PATCH', patch);
  }
  removeSchedule(id: string): Promise<ISchedule> {
    return this.request(`schedules/${encodeURIComponent(id)}`, 'DELETE');
  }
  runSchedule(id: string): Promise<IJob> {
    return this.request(`schedules/${encodeURIComponent(id)}/run`, 'POST');
  }

  private async request<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, 'lepton', 'api', path);
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    if (!response.ok) {
      throw errorFromResponse(response.status, response.statusText, text);
    }
    return parseSuccess<T>(text);
  }
}
