//! Runtime workloads for factory's benchmarks (bench/runtime.py).
//!
//! `workloads alloc [THREADS] [ROUNDS]`: an allocation-heavy multi-threaded workload (many small
//! and medium allocations, half of them freed by another thread), to compare global allocators.
//! `workloads simd [REPS]`: loops LLVM vectorises (integer dot product, byte count, f32 axpy), to
//! compare x86-64 levels. Each prints one line `<name> seconds=<s> checksum=<n>` per kernel; the
//! time covers the kernel only, not process start.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// Blocks handed from one worker to the next, which frees them.
type Batch = Vec<Box<[u8]>>;

/// xorshift64*: a fixed, dependency-free pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn alloc_worker(
    seed: u64,
    rounds: u32,
    give: mpsc::Sender<Batch>,
    take: mpsc::Receiver<Batch>,
) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut checksum = 0u64;
    for _ in 0..rounds {
        let mut batch: Batch = Vec::with_capacity(256);
        for _ in 0..256 {
            // Mostly small objects, some up to 4 KiB: the mix a server allocates.
            let bits = rng.next();
            let size = if bits & 7 == 0 {
                256 + (bits >> 8) as usize % 3840
            } else {
                8 + (bits >> 8) as usize % 120
            };
            let mut block = vec![0u8; size].into_boxed_slice();
            block[0] = bits as u8;
            batch.push(block);
        }
        let mut words: Vec<String> = (0..64)
            .map(|i| format!("item-{i}-{}", rng.next() % 1000))
            .collect();
        words.sort_unstable();
        checksum = checksum.wrapping_add(words[0].len() as u64);
        // Keep one half, hand the other half to the next thread to free.
        let other = batch.split_off(128);
        checksum = checksum.wrapping_add(batch.iter().map(|b| u64::from(b[0])).sum::<u64>());
        drop(batch);
        if give.send(other).is_err() {
            break;
        }
        while let Ok(foreign) = take.try_recv() {
            checksum = checksum.wrapping_add(foreign.len() as u64);
        }
    }
    drop(give);
    for foreign in take {
        checksum = checksum.wrapping_add(foreign.len() as u64);
    }
    checksum
}

fn alloc(threads: usize, rounds: u32) {
    let started = Instant::now();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel()).unzip();
    let mut receivers: Vec<Option<mpsc::Receiver<Batch>>> =
        receivers.into_iter().map(Some).collect();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            // Thread i sends to thread i+1 (a ring) and receives from thread i-1.
            let give = senders[(i + 1) % threads].clone();
            let take = receivers[i].take().expect("each receiver is taken once");
            thread::spawn(move || {
                alloc_worker(0x9e37_79b9_7f4a_7c15 ^ i as u64, rounds, give, take)
            })
        })
        .collect();
    drop(senders);
    let checksum = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .fold(0u64, u64::wrapping_add);
    println!(
        "alloc threads={threads} seconds={:.6} checksum={checksum}",
        started.elapsed().as_secs_f64()
    );
}

fn dot_i32(a: &[i32], b: &[i32]) -> i32 {
    a.iter()
        .zip(b)
        .fold(0i32, |sum, (x, y)| sum.wrapping_add(x.wrapping_mul(*y)))
}

fn count_byte(haystack: &[u8], needle: u8) -> usize {
    haystack.iter().filter(|&&byte| byte == needle).count()
}

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * *xi;
    }
}

fn timed(name: &str, reps: u32, mut kernel: impl FnMut() -> u64) {
    let started = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..reps {
        checksum = checksum.wrapping_add(kernel());
    }
    println!(
        "{name} seconds={:.6} checksum={checksum}",
        started.elapsed().as_secs_f64()
    );
}

fn simd(reps: u32) {
    // Sized to stay in the L2 cache: the loops are bound by arithmetic, not memory.
    const N: usize = 16 * 1024;
    let mut rng = Rng(42);
    let a: Vec<i32> = (0..N).map(|_| rng.next() as i32 >> 8).collect();
    let b: Vec<i32> = (0..N).map(|_| rng.next() as i32 >> 8).collect();
    let bytes: Vec<u8> = (0..N).map(|_| rng.next() as u8).collect();
    let x: Vec<f32> = (0..N)
        .map(|_| (rng.next() % 1000) as f32 / 1000.0)
        .collect();
    let mut y: Vec<f32> = vec![0.5; N];
    timed("dot_i32", reps, || {
        dot_i32(black_box(&a), black_box(&b)) as u32 as u64
    });
    timed("count_byte", reps, || {
        count_byte(black_box(&bytes), black_box(7)) as u64
    });
    timed("axpy_f32", reps, || {
        axpy(black_box(1.0e-3), black_box(&x), black_box(&mut y));
        y[N / 2].to_bits() as u64
    });
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, default: T) -> T {
    match args.get(index) {
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("workloads: not a number: {text}");
            std::process::exit(2)
        }),
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("alloc") => alloc(arg(&args, 2, 4), arg(&args, 3, 2000)),
        Some("simd") => simd(arg(&args, 2, 40000)),
        _ => {
            eprintln!("usage: workloads alloc [THREADS] [ROUNDS] | workloads simd [REPS]");
            std::process::exit(2)
        }
    }
}
