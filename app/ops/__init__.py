"""The ops console (`/ops`): server-rendered pages on which ops sign in with their API key and
see and act on payments. It uses the same services as the JSON API (one payment entry point)
and the same page machinery as the shopper's pages (app.web)."""
