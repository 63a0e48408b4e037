"""Trust: signature formats and their checks, beside the stores and independent of them.

Pure verification lives here, one format per module: cosign's simple-signing
payloads and keys (`simplesigning`, `keys`, `cosignkey`), DSSE and sigstore
bundles (`dsse`, `bundle`, `keyless` over the sigstore library), notation's
envelopes and trust policy (`notation`), and `verifier`, which turns what a
user asked for (`_core.trustspec.VerifySpec`) into the checks. Finding the
signatures of a digest in a store is an algorithm (`_graph/verify.py`).
"""
