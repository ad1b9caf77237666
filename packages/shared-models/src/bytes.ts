// Byte counts as people read them, the same on the webapp's pages and in the slave's messages.

/** "512 B", "1.5 GiB", "12 GiB": binary units, one decimal below 10 of a unit. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}
