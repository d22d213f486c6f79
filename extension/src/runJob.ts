import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';
import { parseParametersCell } from './logic';

/** The source of the notebook's first cell tagged `parameters` (papermill's convention). */
export function parametersSource(panel: NotebookPanel): string | null {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return null;
  }
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    const tags = cell.getMetadata('tags');
    if (Array.isArray(tags) && tags.includes('parameters')) {
      return cell.sharedModel.getSource();
    }
  }
  return null;
}

export interface IRunJobRequest {
  notebook: string;
  parameters: Record<string, unknown>;
}

/** Dialog body: the notebook path and its parameters as editable JSON. */
class RunJobBody extends Widget {
  private readonly textarea: HTMLTextAreaElement;

  constructor(path: string, prefill: Record<string, unknown>, skipped: string[]) {
    super();
    this.addClass('lepton-RunJobDialog');
    const label = document.createElement('div');
    label.textContent = `Notebook: ${path}`;
    const help = document.createElement('div');
    help.className = 'lepton-help';
    help.textContent = 'Parameters (JSON object), prefilled from the cell tagged "parameters":';
    this.textarea = document.createElement('textarea');
    this.textarea.className = 'jp-mod-styled lepton-params';
    this.textarea.rows = 8;
    this.textarea.value = JSON.stringify(prefill, null, 2);
    this.node.append(label, help, this.textarea);
    if (skipped.length) {
      const note = document.createElement('div');
      note.className = 'lepton-help';
      note.textContent = `Not prefilled (not plain literals): ${skipped.join(', ')}`;
      this.node.append(note);
    }
  }

  getValue(): Record<string, unknown> {
    const value = JSON.parse(this.textarea.value || '{}');
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('parameters must be a JSON object, e.g. {"epochs": 1}');
    }
    return value as Record<string, unknown>;
  }
}

/** Ask for parameters; null when cancelled. Saves the notebook first: the job runs the file. */
export async function askRunJob(panel: NotebookPanel): Promise<IRunJobRequest | null> {
  if (panel.context.model.dirty) {
    await panel.context.save();
  }
  const parsed = parseParametersCell(parametersSource(panel) ?? '');
  const body = new RunJobBody(panel.context.path, parsed.parameters, parsed.skipped);
  const result = await showDialog({
    title: 'Run as job',
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })],
    focusNodeSelector: 'textarea'
  });
  if (!result.button.accept) {
    return null;
  }
  return { notebook: panel.context.path, parameters: result.value ?? {} };
}
