//! Arbitrary bytes as an Exchange Server message tracking log (CSV), forced with `--format`
//! (`Format::ExchangeTracking`): no panic, every row fits its table, every line
//! accounted for once. See `mcpf_fuzz::check_format`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpf_formats::Format;

fuzz_target!(|data: &[u8]| {
    mcpf_fuzz::check_format(Format::ExchangeTracking, data);
});
