// The tracker for the page it runs in: `import clickstream from ".../clickstream.js"` or `window.clickstream`.
import { createTracker } from "./tracker.js";

export { createTracker };
const clickstream = createTracker(globalThis);
if (typeof window != "undefined") window.clickstream = clickstream;
export default clickstream;
