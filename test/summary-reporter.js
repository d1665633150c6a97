// Prints one line per skipped test (its name carries the reason) and then the plain closing line
// CI reads: "tests: N passed, N failed, N skipped". .ci/run matches its start,
// "tests: N passed, N failed", so the skipped count is only ever appended.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = [];
    for (const file of results.testResults) {
      for (const test of file.testResults) {
        if (test.status === 'pending' || test.status === 'skipped' || test.status === 'todo') {
          skipped.push(`skipped: ${test.fullName} [${file.testFilePath.replace(`${process.cwd()}/`, '')}]`);
        }
      }
    }
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skippedCount = results.numPendingTests + results.numTodoTests;
    process.stdout.write(
      `\n${skipped.map((line) => `${line}\n`).join('')}` +
        `tests: ${results.numPassedTests} passed, ${failed} failed, ${skippedCount} skipped\n`,
    );
  }
}
module.exports = SummaryReporter;
