//! The CMDB's rules, no I/O: the vocabularies of CIs and relations, and what makes a CI valid.

pub mod ci;
