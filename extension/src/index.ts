import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { CommandToolbarButton, runIcon } from '@jupyterlab/ui-components';
import { LeptonApiError } from './errors';
import { connectCode, parseParametersCell } from './logic';
import { leptonIcon, LeptonPanel } from './panel';
import { askRunJob, parametersSource } from './runJob';
import { IJob, ILeptonService, LeptonService } from './service';
import { CommandIDs, ILeptonServiceToken, PLUGIN_ID } from './tokens';

function insertCode(tracker: INotebookTracker, code: string): boolean {
  const panel = tracker.currentWidget;
  if (!panel) {
    return false;
  }
  NotebookActions.insertBelow(panel.content);
  panel.content.activeCell?.model.sharedModel.setSource(code);
  return true;
}

const plugin: JupyterFrontEndPlugin<ILeptonService> = {
  id: PLUGIN_ID,
  description: 'A Lepton sidebar for Dask clusters and notebook jobs.',
  autoStart: true,
  provides: ILeptonServiceToken,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ): ILeptonService => {
    const service = new LeptonService();
    const { commands } = app;
    const insertConnect = (address: string, credentials?: string | null): void => {
      if (!insertCode(tracker, connectCode(address, credentials))) {
        Notification.warning('Open a notebook first: the connect code goes into the active notebook.');
      }
    };
    const openPath = (path: string): void => void commands.execute('docmanager:open', { path });
    const onJobFinished = (job: IJob): void => {
      const name = job.notebook.split('/').pop();
      const text = job.status === 'succeeded' ? `Job ${job.id} (${name}) succeeded` : `Job ${job.id} (${name}) ${job.status}${job.error ? `: ${job.error}` : ''}`;
      const output = job.output_path;
      const options = {
        autoClose: job.status === 'succeeded' ? 8000 : (false as const),
        actions: output ? [{ label: 'Open output', callback: () => openPath(output) }] : []
      };
      if (job.status === 'succeeded') {
        Notification.success(text, options);
      } else {
        Notification.error(text, options);
      }
    };
    const panel = new LeptonPanel({
      service,
      pollMs: 3000,
      defaultWorkers: 2,
      openPath,
      onJobFinished,
      currentNotebook: async () => {
        const current = tracker.currentWidget;
        if (!current) {
          return null;
        }
        // A schedule runs the file: read the parameters cell once the notebook is loaded and saved.
        await current.context.ready;
        if (current.context.model.dirty) {
          await current.context.save();
        }
        return { path: current.context.path, parameters: parseParametersCell(parametersSource(current) ?? '').parameters };
      },
      openDashboard: link => window.open(/^https?:/.test(link) ? link : URLExt.join(PageConfig.getBaseUrl(), link), '_blank', 'noopener'),
      insertConnectCode: insertConnect
    });
    app.shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, 'lepton-sidebar');

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show Lepton Sidebar',
      icon: leptonIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    commands.addCommand(CommandIDs.insertConnectCode, {
      label: 'Insert Lepton Cluster Connect Code',
      execute: args => insertConnect(String(args.address ?? ''), args.credentials ? String(args.credentials) : null)
    });
    commands.addCommand(CommandIDs.openDashboard, {
      label: 'Open Dask Dashboard',
      execute: args => void window.open(String(args.link), '_blank', 'noopener')
    });
    commands.addCommand(CommandIDs.openJobOutput, {
      label: 'Open Job Output Notebook',
      execute: args => commands.execute('docmanager:open', { path: String(args.path) })
    });
    commands.addCommand(CommandIDs.runAsJob, {
      label: 'Run as Job…',
      caption: 'Run this notebook as a reproducible lepton_nb job',
      icon: runIcon,
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const current = tracker.currentWidget;
        if (!current) {
          return;
        }
        try {
          const request = await askRunJob(current);
          if (!request) {
            return;
          }
          const job = await service.submitJob(request.notebook, request.parameters);
          Notification.success(`Job ${job.id} submitted for ${request.notebook}`, { autoClose: 4000 });
          app.shell.activateById(panel.id);
        } catch (error) {
          const text = error instanceof LeptonApiError ? error.userMessage : String((error as Error).message ?? error);
          Notification.error(`Run as job failed: ${text}`);
        }
      }
    });
    palette?.addItem({ command: CommandIDs.runAsJob, category: 'Lepton' });
    palette?.addItem({ command: CommandIDs.openSidebar, category: 'Lepton' });

    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (nb: NotebookPanel) => {
        const button = new CommandToolbarButton({ commands, id: CommandIDs.runAsJob, label: 'Run as job…' });
        button.addClass('lepton-RunAsJobButton');
        nb.toolbar.insertAfter('cellType', 'leptonRunAsJob', button);
        return button;
      }
    });

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(settings => {
        const apply = (): void =>
          panel.update_props({
            pollMs: Math.max(500, settings.get('pollInterval').composite as number),
            defaultWorkers: settings.get('defaultWorkers').composite as number
          });
        apply();
        settings.changed.connect(apply);
      });
    }
    return service;
  }
};

export default plugin;
