//! The `rehearse` command line.

fn main() {
    println!("rehearse: not yet");
}
