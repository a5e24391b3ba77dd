import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

/** What every screen needs: the language and `t`, the session, the API, the config. */
export const HubContext = createContext(null);

export function useHub() {
  return useContext(HubContext);
}
