"""Everything revimg sends over the network, in two clients of opposite trust, side by side, never mixed.

- crawler: the polite client for hosts we chose (Wikimedia): our User-Agent, serial requests, a pace per
  host shared through Redis, retries with backoff for transient errors. Import it for crawling.
- untrusted: the guarded fetch of a URL a person gave us: only public addresses (netguard checks them and
  the connection goes to the checked address), redirects checked hop by hop, one deadline, no retries.
- common: what both share (the User-Agent, the Download record).

Import the module you mean (`from catalog.http import crawler`); this package re-exports nothing.
"""
