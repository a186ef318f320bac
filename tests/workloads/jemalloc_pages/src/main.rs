//! Allocates through jemalloc (small, large and freed blocks) and says how much it touched.

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() {
    let small: Vec<Box<[u8; 48]>> = (0..10_000).map(|i| Box::new([i as u8; 48])).collect();
    let mut large = vec![0u8; 8 << 20];
    for (i, byte) in large.iter_mut().enumerate().step_by(4096) {
        *byte = i as u8;
    }
    let sum: usize = small.iter().map(|b| b[0] as usize).sum::<usize>()
        + large.iter().map(|&b| b as usize).sum::<usize>();
    drop(small);
    let text: String = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    println!("jemalloc ok: {} bytes, checksum {sum}, args [{text}]", large.len());
}
