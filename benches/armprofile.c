/* A qemu TCG plugin for benches/armprofile.sh: counts the guest instructions a
 * qemu-user process executes, by the address where each translation block starts.
 *
 *   qemu-arm -cpu arm1176 -plugin ./libarmprofile.so,out=TOTAL,blocks=BLOCKS PROGRAM...
 *
 * When the process exits it writes the total to TOTAL (one number, as
 * benches/armcount.sh expects) and, to BLOCKS, one line per block start address:
 * "ADDRESS INSTRUCTIONS" in hexadecimal and decimal. A block ends at the first branch,
 * so it never spans two functions: the address names the function the instructions
 * belong to. Counts are added inline by the generated code (no call per block); two
 * threads running the same block at the same moment may lose an addition, which does
 * not matter for a profile. Only user-space instructions are counted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct block {
    uint64_t vaddr;
    uint64_t insns;
};

static GMutex lock;
static GHashTable *blocks; /* vaddr -> struct block* */
static const char *total_path;
static const char *blocks_path;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
    struct block *b;
    g_mutex_lock(&lock);
    b = g_hash_table_lookup(blocks, &vaddr);
    if (!b) {
        b = g_new0(struct block, 1);
        b->vaddr = vaddr;
        g_hash_table_insert(blocks, &b->vaddr, b);
    }
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void at_exit(qemu_plugin_id_t id, void *unused)
{
    uint64_t total = 0;
    GHashTableIter it;
    gpointer key, value;
    FILE *out = blocks_path ? fopen(blocks_path, "w") : NULL;
    g_mutex_lock(&lock);
    g_hash_table_iter_init(&it, blocks);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct block *b = value;
        total += b->insns;
        if (out && b->insns)
            fprintf(out, "%" PRIx64 " %" PRIu64 "\n", b->vaddr, b->insns);
    }
    g_mutex_unlock(&lock);
    if (out)
        fclose(out);
    if (total_path) {
        FILE *f = fopen(total_path, "w");
        if (f) {
            fprintf(f, "%" PRIu64 "\n", total);
            fclose(f);
        }
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "out=", 4))
            total_path = strdup(argv[i] + 4);
        else if (!strncmp(argv[i], "blocks=", 7))
            blocks_path = strdup(argv[i] + 7);
    }
    blocks = g_hash_table_new(g_int64_hash, g_int64_equal);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
