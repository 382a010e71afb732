/** Whether process `pid` runs (one owned by another user counts: kill(pid, 0) says EPERM). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
