/* kernels/cuda/emu/emu.cpp: the coroutine scheduler behind cuda_runtime.h's
 * emulated blocks (verification tool; see run.sh). */
#include "cuda_runtime.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;
ucontext_t emu_sched;
emu_thread *emu_cur;
emu_barrier emu_block_bar;
std::vector<emu_barrier> emu_warp_bar;
std::vector<double> emu_warp_vals;

#define EMU_STACK (256 * 1024)
static std::vector<emu_thread> threads(1024);
static std::vector<char *> stacks;
static void (*cur_call)(void *);
static void *cur_arg;

static void emu_entry() {
  cur_call(cur_arg);
  emu_cur->done = true;
}

void emu_run_block(unsigned nt, void (*call)(void *), void *arg) {
  cur_call = call, cur_arg = arg;
  while (stacks.size() < nt) stacks.push_back((char *)malloc(EMU_STACK));
  emu_block_bar = emu_barrier{(int)nt, 0, 0};
  emu_warp_bar.assign(nt / 32, emu_barrier{32, 0, 0});
  emu_warp_vals.assign(nt, 0.0);
  for (unsigned t = 0; t < nt; t++) {
    emu_thread &th = threads[t];
    th.done = false;
    th.tid = dim3(t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y));
    getcontext(&th.ctx);
    th.ctx.uc_stack.ss_sp = stacks[t];
    th.ctx.uc_stack.ss_size = EMU_STACK;
    th.ctx.uc_link = &emu_sched;
    makecontext(&th.ctx, emu_entry, 0);
  }
  /* Round-robin until every thread has returned; a thread blocked at a
   * barrier that some thread left early would spin here for ever (a hang on
   * a GPU too), so run.sh runs under a timeout. */
  for (unsigned live = nt; live;) {
    live = 0;
    for (unsigned t = 0; t < nt; t++) {
      emu_thread &th = threads[t];
      if (th.done) continue;
      live++;
      emu_cur = &th;
      threadIdx = th.tid;
      swapcontext(&emu_sched, &th.ctx);
    }
  }
}
