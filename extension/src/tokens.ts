import { Token } from '@lumino/coreutils';
import type { ILeptonService } from './service';

/** Namespaced command IDs. */
export const CommandIDs = {
  openSidebar: 'lepton:open-sidebar',
  runAsJob: 'lepton:run-as-job',
  insertConnectCode: 'lepton:insert-connect-code',
  openDashboard: 'lepton:open-dashboard',
  openJobOutput: 'lepton:open-job-output'
} as const;

export const PLUGIN_ID = 'lepton-nb:plugin';

/** Other extensions can reuse the API client (e.g. to list clusters). */
export const ILeptonServiceToken = new Token<ILeptonService>('lepton-nb:ILeptonService', 'The lepton_nb REST API client.');
