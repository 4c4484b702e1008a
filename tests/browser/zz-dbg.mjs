import { launch, watchErrors } from './harness.mjs';
const browser = await launch();
try {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  page.on('console', (m) => console.log('console', m.type(), m.text()));
  page.on('requestfailed', (r) => console.log('failed', r.url()));
  page.on('response', (r) => {
    if (r.url().includes('wasm')) console.log('resp', r.status(), r.url(), r.headers()['content-type']);
  });
  await page.goto(process.argv[2]);
  await page.waitForFunction(() => document.body?.dataset.result, null, { timeout: 30_000 });
  console.log(await page.evaluate(() => document.body.dataset.result), errors);
} finally {
  await browser.close();
}
