/**
 * Has a scheme (`http://`, `file://` …): a URL, never the path of an executable. Its own module, so that the
 * command registry can tell one from a path without loading the settings schema (and zod) on every start.
 */
export const HAS_URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
