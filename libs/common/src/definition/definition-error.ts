/**
 * A workflow definition that is not valid. The message says what is wrong and where, in the
 * words of the definition (`task "load": "http.url" must be ...`); `path` locates the field in
 * the JSON (`tasks[3].http.url`, `edges[0]`, `params["a b"]`) for programs.
 */
export class DefinitionError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'DefinitionError';
  }
}
