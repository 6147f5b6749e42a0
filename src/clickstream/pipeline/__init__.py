"""The Step Functions workflow's steps, one module each (``plan``, ``sessionize``, ``load``, ``aggregate``,
``commit``) with its contract at the top, and what they share (``manifest``, ``lease``); no step imports another."""
