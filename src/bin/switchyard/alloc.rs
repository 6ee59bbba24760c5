//! The router's allocator: mimalloc for the many small, short-lived blocks of the request
//! path, the system allocator for large ones.
//!
//! mimalloc zeroes a large zeroed allocation by writing it, touching every page; glibc's
//! `calloc` maps fresh pages for one, which the kernel provides zeroed and which cost no
//! memory until written. sled allocates large zeroed tables at start (its metrics
//! histograms) that are rarely written: with mimalloc alone they were resident from the
//! start. Blocks are routed by size, so a block is always freed by the allocator that made it.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this size or more go to the system allocator.
const LARGE: usize = 64 * 1024;

pub struct Allocator;

fn large(layout: &Layout) -> bool {
    layout.size() >= LARGE
}

// SAFETY: every method forwards to one of two sound allocators, chosen by the block's size,
// which is the same at allocation and at deallocation; a reallocation that crosses the line
// allocates with the new allocator, copies and frees with the old one.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if large(&layout) {
            System.alloc(layout)
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if large(&layout) {
            System.alloc_zeroed(layout)
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(&layout) {
            System.dealloc(ptr, layout)
        } else {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (large(&layout), large(&new_layout)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) => mimalloc::MiMalloc.realloc(ptr, layout, new_size),
            _ => {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}
