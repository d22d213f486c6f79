import React, { useEffect, useState } from 'react';
import { LeptonService, type IProfile } from '../service';

export interface IProfileInputProps {
  value: string;
  onChange: (value: string) => void;
}

/** The Profile field: free text, with the known profiles and their kind offered as choices
 * (GET lepton/api/profiles). A failed lookup leaves a plain text field. */
export function ProfileInput(props: IProfileInputProps): JSX.Element {
  const [profiles, setProfiles] = useState<IProfile[]>([]);
  useEffect(() => {
    let live = true;
    new LeptonService()
      .listProfiles()
      .then(rows => live && setProfiles(rows))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);
  return (
    <>
      <input
        className="jp-mod-styled lepton-profile"
        type="text"
        placeholder="(none)"
        list="lepton-profiles"
        value={props.value}
        onChange={e => props.onChange(e.target.value)}
      />
      <datalist id="lepton-profiles">
        {profiles.map(p => (
          <option key={p.name} value={p.name}>
            {p.description ? `${p.kind}: ${p.description}` : p.kind}
          </option>
        ))}
      </datalist>
    </>
  );
}
