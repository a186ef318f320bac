//! The seed's program: mimalloc as the global allocator, a Tokio task computing a vector.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let numbers = tokio::spawn(async { vec![1, 2, 3] })
        .await
        .expect("the Tokio task panicked");
    println!("Hello, world from Tokio: {numbers:?}");
}
