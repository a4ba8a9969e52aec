//! End-to-end tests of cryoforge on real files; the tests themselves live in `tests/`.
