// The exposition room's front door: the page cache and the buffers a scrape is written from.
export { ExpositionCache } from "./exposition-cache.js";
export { PageBuffer } from "./page-buffer.js";
export { SharedPage } from "./shared-page.js";
