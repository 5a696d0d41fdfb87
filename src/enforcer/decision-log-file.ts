import { close, constants, createWriteStream, fstat, open, type WriteStream } from "node:fs";

/**
 * Opens a decision-log file for appending. Decisions hold request data, so the file is created 0600, a
 * symbolic link planted at its path is never followed (O_NOFOLLOW; Windows has no such flag), and a file
 * another user owns (one planted in a shared directory such as /tmp) is refused. Rejects with the one line
 * to log: what went wrong, and what to do.
 */
export function openLogFile(file: string): Promise<WriteStream> {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);
  return new Promise((resolve, reject) => {
    open(file, flags, 0o600, (openError, fd) => {
      if (openError) {
        reject(
          new Error(
            openError.code === "ELOOP"
              ? `decision log ${file} is a symbolic link, which is not followed: no decisions are logged — point decisionLog at a regular file`
              : `cannot open decision log ${file} (${openError.code ?? openError.message}): no decisions are logged — check the path and its permissions`,
          ),
        );
        return;
      }
      fstat(fd, (statError, stats) => {
        const uid = process.getuid?.();
        const problem = statError
          ? `cannot read decision log ${file} (${statError.code ?? statError.message}): no decisions are logged — check the path`
          : uid !== undefined && stats.uid !== uid
            ? `decision log ${file} belongs to another user (uid ${stats.uid}): no decisions are logged — remove it or choose a path only this user can write`
            : undefined;
        if (problem) {
          close(fd, () => reject(new Error(problem)));
          return;
        }
        resolve(createWriteStream("", { fd }));
      });
    });
  });
}
