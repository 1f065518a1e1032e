/* Probe for .ci/armv6-scan.py's self-test.  Built for ARMv7 this produces the
 * instructions an ARMv6 core lacks (movw/movt for a 32-bit constant, ubfx for
 * a bit field, dmb around an atomic, a VFPv3 float immediate; Thumb-2 when
 * built as Thumb); built for ARMv6 it must scan clean. */
#include <stdint.h>

volatile uint32_t sink;
int counter;

uint32_t field(uint32_t x) { return (x >> 5) & 0x7f; }
int bump(void) { return __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST); }
float half_plus_one(float x) { return x * 0.5f + 1.0f; }
uint32_t wide_constant(void) { return 0x12345678u; }

int main(void)
{
    sink = field(sink) + (uint32_t)bump() + (uint32_t)half_plus_one(2.0f) + wide_constant();
    return 0;
}
