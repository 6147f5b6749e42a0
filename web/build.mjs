// Builds the tracker (tracker/dist/clickstream.js and .min.js) and the store (store/dist/).
import { build as tracker } from "./tracker/build.mjs";
import { build as store } from "./store/build.mjs";

const which = process.argv[2];
if (!which || which === "tracker") await tracker();
if (!which || which === "store") await store();
