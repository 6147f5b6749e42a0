// Any text a page can hand the tracker (any Unicode, lone surrogates, control characters, long strings) ends up
// in requests the API can read, within its limits, and nothing is lost or changed on the way.
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { eventType } from "../src/events.js";
import { MAX_BYTES, MAX_EVENTS } from "../src/tracker.js";
import { bodyOf, drive, fakeWindow, tracker } from "./fakes.js";

// The pipeline's event_type rule (clickstream.validate.models.EVENT_TYPE_PATTERN), custom part.
const CUSTOM = /^custom:[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,119}$/;
const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "binary", minLength: 2000, maxLength: 60000 }));

test("any event name becomes a GA4 name or a custom name the pipeline accepts", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (name) => {
      const t = eventType(name);
      assert.ok(t == name || CUSTOM.test(t), JSON.stringify(t));
    }),
    { numRuns: 500 },
  );
});

test("hostile parameters, titles and URLs: every event arrives once, as tracked, in requests within the limits", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ name: fc.string({ unit: "binary", maxLength: 20 }), value: text, title: text }), { minLength: 1, maxLength: 40 }),
      fc.string({ unit: "binary", maxLength: 200 }),
      async (records, path) => {
        const w = fakeWindow({ href: "https://shop.example.com/" + encodeURIComponent(path) });
        const t = tracker(w, { batchSize: 7 });
        const tracked = new Map();
        for (const r of records) {
          w.document.title = r.title;
          const id = t.track(r.name, { note: r.value, [r.name || "k"]: r.value });
          assert.ok(id);
          tracked.set(id, r);
        }
        await drive(w.clock, t.flush());
        const seen = new Map();
        for (const req of w.requests) {
          assert.ok(new TextEncoder().encode(req.body).length <= MAX_BYTES);
          const body = bodyOf(req);
          assert.ok(body.events.length <= MAX_EVENTS);
          for (const e of body.events) {
            assert.ok(!seen.has(e.event_id), "once");
            seen.set(e.event_id, e);
          }
        }
        assert.equal(seen.size, tracked.size);
        for (const [id, r] of tracked) {
          const e = seen.get(id);
          assert.equal(e.properties.note, r.value);
          assert.equal(e.page.title, r.title);
          assert.equal(e.event_type, eventType(r.name));
        }
      },
    ),
    { numRuns: 40 },
  );
});
