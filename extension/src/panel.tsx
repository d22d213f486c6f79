import { ReactWidget, LabIcon } from '@jupyterlab/ui-components';
import React from 'react';
import { ISidebarProps, Sidebar } from './components/Sidebar';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="12" cy="12" r="3"/><ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5"/>
<ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5" transform="rotate(60 12 12)"/>
<ellipse cx="12" cy="12" rx="10" ry="4" fill="none" stroke="#616161" stroke-width="1.5" transform="rotate(120 12 12)"/></g></svg>`;

export const leptonIcon = new LabIcon({ name: 'lepton-nb:icon', svgstr: ICON_SVG });

/** The left-sidebar widget hosting the React panel. */
export class LeptonPanel extends ReactWidget {
  constructor(private props: ISidebarProps) {
    super();
    this.id = 'lepton-sidebar';
    this.addClass('lepton-Panel');
    this.title.icon = leptonIcon;
    this.title.caption = 'Lepton: clusters and jobs';
  }

  /** Settings changes (poll interval, default workers) re-render the panel. */
  update_props(patch: Partial<ISidebarProps>): void {
    this.props = { ...this.props, ...patch };
    this.update();
  }

  render(): JSX.Element {
    return <Sidebar {...this.props} />;
  }
}
