// The page's tracking code: the real Snowplow browser tracker v4 and its e-commerce plugin, bundled by esbuild
// into one script (one copy of the tracker core, so the plugin's calls reach the tracker created here).
import {
  enableActivityTracking,
  flushBuffer,
  newTracker,
  setUserId,
  trackPageView,
  trackSelfDescribingEvent,
  trackStructEvent,
} from "@snowplow/browser-tracker";
import {
  SnowplowEcommercePlugin,
  trackAddToCart,
  trackCheckoutStep,
  trackProductView,
  trackRefund,
  trackRemoveFromCart,
  trackTransaction,
} from "@snowplow/browser-plugin-snowplow-ecommerce";

window.capture = {
  enableActivityTracking,
  flushBuffer,
  newTracker,
  setUserId,
  trackPageView,
  trackSelfDescribingEvent,
  trackStructEvent,
  SnowplowEcommercePlugin,
  trackAddToCart,
  trackCheckoutStep,
  trackProductView,
  trackRefund,
  trackRemoveFromCart,
  trackTransaction,
};
