// Prints a runtime's scenario results, one line each, and returns how many failed.
export function report(runtime, results) {
  let failed = 0;
  for (const r of results) {
    console.log(`${r.ok ? "ok  " : "FAIL"} ${runtime}: ${r.name}`);
    if (!r.ok) {
      failed++;
      console.log(`     ${r.detail.split("\n").join("\n     ")}`);
    }
  }
  if (results.length === 0) {
    console.log(`FAIL ${runtime}: no results`);
    failed++;
  }
  return failed;
}
