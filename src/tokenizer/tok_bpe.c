/* BPE merges on one pre-token, by rank, with a binary heap.
 *
 * The word starts as one symbol per character (or byte), each holding a token
 * id, linked to its neighbours. Every adjacent pair that has a merge goes on a
 * heap keyed by (rank, position), the same order HF tokenizers uses. Popping
 * the lowest merge joins two symbols and pushes at most two new pairs, so a
 * word of n symbols costs O(n log n): a 1 MB run of one character is fine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int tok_ids_push(tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p)
            return -1;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

typedef struct heap_item {
    int32_t rank;
    uint32_t pos;      /* left symbol */
    int32_t left, right; /* ids when pushed; a stale item no longer matches */
    int32_t merged;    /* the merge's result, so a pop needs no second lookup */
} heap_item;

typedef struct bpe_heap {
    heap_item *a;
    size_t n, cap;
    bool on_stack; /* a is the caller's small array: copy out, never realloc */
} bpe_heap;

static bool item_less(const heap_item *x, const heap_item *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static int heap_push(bpe_heap *h, heap_item it)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        heap_item *p = h->on_stack ? malloc(cap * sizeof *p) : realloc(h->a, cap * sizeof *p);
        if (!p)
            return -1;
        if (h->on_stack)
            memcpy(p, h->a, h->n * sizeof *p);
        h->on_stack = false;
        h->a = p;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && item_less(&it, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = it;
    return 0;
}

static heap_item heap_pop(bpe_heap *h)
{
    heap_item top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && item_less(&h->a[c + 1], &h->a[c]))
            c++;
        if (!item_less(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
} bpe_sym;

/* Initial symbols: byte-level words are bytes; SentencePiece words are
 * characters, falling back to <0xNN> byte pieces or unk when a character
 * is not in the vocabulary, and dropped without either (as HF does). */
static int initial_symbols(const tokenizer *tok, const char *w, size_t n, bpe_sym *sym, size_t *ns)
{
    size_t k = 0;
    bool last_unk = false;
    if (tok->byte_level) {
        /* Each byte is one of HF's mapped characters. One the vocab lacks
         * becomes unk (fused with the one before when fuse_unk), or without
         * an unk token is dropped, as HF's BPE merge_word does. */
        for (size_t i = 0; i < n; i++) {
            int32_t id = tok->byte_id[(unsigned char)w[i]];
            if (id >= 0) {
                sym[k++].id = id;
                last_unk = false;
            } else if (tok->unk_id >= 0) {
                if (!(tok->fuse_unk && last_unk))
                    sym[k++].id = tok->unk_id;
                last_unk = true;
            }
        }
        *ns = k;
        return 0;
    }
    for (size_t i = 0; i < n;) {
        int len = tok_utf8_seq_len((unsigned char)w[i]);
        if (len == 0 || i + (size_t)len > n)
            len = 1;
        /* ASCII from a table filled at load: most characters skip the hash */
        int32_t id = len == 1 && (unsigned char)w[i] < 128 ? tok->ascii_id[(unsigned char)w[i]]
                                                            : tok_str_map_get(&tok->vocab, w + i, (size_t)len);
        if (id >= 0) {
            sym[k++].id = id;
            last_unk = false;
        } else {
            bool all_bytes = tok->byte_fallback;
            for (int b = 0; b < len && all_bytes; b++)
                all_bytes = tok->byte_id[(unsigned char)w[i + (size_t)b]] >= 0;
            if (all_bytes) {
                for (int b = 0; b < len; b++)
                    sym[k++].id = tok->byte_id[(unsigned char)w[i + (size_t)b]];
                last_unk = false;
            } else if (tok->unk_id >= 0) {
                if (!(tok->fuse_unk && last_unk))
                    sym[k++].id = tok->unk_id;
                last_unk = true;
            } /* else dropped: HF's BPE without an unk token skips it */
        }
        i += (size_t)len;
    }
    *ns = k;
    return 0;
}

/* An id for byte b when a string has no token and byte_fallback is on. */
static int32_t fallback_id(const tokenizer *tok, unsigned char b)
{
    if (!tok->byte_level)
        return tok->byte_id[b];
    char name[8]; /* byte-level byte_id holds the byte's own token, not <0xNN> */
    snprintf(name, sizeof name, "<0x%02X>", b);
    return tok_str_map_get(&tok->vocab, name, 6);
}

/* Initial symbols with a continuing_subword_prefix or end_of_word_suffix,
 * as HF's merge_word builds them: each character (byte, byte-level) is
 * looked up with the prefix unless it starts the word and with the suffix
 * when it ends it; byte fallback then takes every byte of that string,
 * the prefix's too. sym holds n * (1 + csp_len) + eow_len entries. */
static int affixed_symbols(const tokenizer *tok, const char *w, size_t n, bpe_sym *sym, size_t *ns)
{
    char small[64], *buf = small;
    size_t cap = sizeof small, k = 0;
    bool last_unk = false;
    for (size_t i = 0; i < n;) {
        int len = tok->byte_level ? 1 : tok_utf8_seq_len((unsigned char)w[i]);
        if (len == 0 || i + (size_t)len > n)
            len = 1;
        size_t pre = i ? tok->csp_len : 0, suf = i + (size_t)len == n ? tok->eow_len : 0;
        size_t m = pre + (size_t)len + suf;
        if (m > cap) {
            char *p = buf == small ? malloc(m) : realloc(buf, m);
            if (!p) {
                if (buf != small)
                    free(buf);
                return -1;
            }
            buf = p;
            cap = m;
        }
        if (pre)
            memcpy(buf, tok->csp, pre);
        memcpy(buf + pre, w + i, (size_t)len);
        if (suf)
            memcpy(buf + pre + (size_t)len, tok->eow, suf);
        int32_t id = tok_str_map_get(&tok->vocab, buf, m);
        bool all_bytes = id < 0 && tok->byte_fallback;
        for (size_t b = 0; b < m && all_bytes; b++)
            all_bytes = fallback_id(tok, (unsigned char)buf[b]) >= 0;
        if (id >= 0) {
            sym[k++].id = id;
            last_unk = false;
        } else if (all_bytes) {
            for (size_t b = 0; b < m; b++)
                sym[k++].id = fallback_id(tok, (unsigned char)buf[b]);
            last_unk = false;
        } else if (tok->unk_id >= 0) {
            if (!(tok->fuse_unk && last_unk))
                sym[k++].id = tok->unk_id;
            last_unk = true;
        } /* else dropped, as HF's BPE without an unk token does */
        i += (size_t)len;
    }
    if (buf != small)
        free(buf);
    *ns = k;
    return 0;
}

int tok_bpe_word(const tokenizer *tok, const char *w, size_t n, tok_ids *out)
{
    if (n == 0)
        return 0;
    if (tok->ignore_merges) {
        /* Llama 3: a pre-token that is itself in the vocabulary is one token. */
        int32_t id = tok_str_map_get(&tok->vocab, w, n);
        if (id >= 0 && !(tok->flags[id] & TOKF_ADDED))
            return tok_ids_push(out, id);
    }
    bool affixed = tok->csp || tok->eow;
    /* byte fallback on affixed strings can give more symbols than bytes */
    size_t max_sym = affixed ? n * (1 + tok->csp_len) + tok->eow_len : n;
    bpe_sym small[64];
    bpe_sym *sym = max_sym <= 64 ? small : malloc(max_sym * sizeof *sym);
    if (!sym)
        return -1;
    size_t ns = 0;
    int rc = affixed ? affixed_symbols(tok, w, n, sym, &ns) : initial_symbols(tok, w, n, sym, &ns);
    if (rc == 0 && ns > 1) {
        for (size_t i = 0; i < ns; i++) {
            sym[i].prev = (int32_t)i - 1;
            sym[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
        }
        bpe_heap h = {0};
        heap_item small_heap[64];
        h.a = small_heap;
        h.cap = 64;
        h.on_stack = true;
        for (size_t i = 0; i + 1 < ns && rc == 0; i++) {
            const tok_merge *m = tok_pair_map_get(&tok->merges, sym[i].id, sym[i + 1].id);
            if (m)
                rc = heap_push(&h, (heap_item){m->rank, (uint32_t)i, sym[i].id, sym[i + 1].id, m->merged});
        }
        while (h.n && rc == 0) {
            heap_item it = heap_pop(&h);
            bpe_sym *l = &sym[it.pos];
            if (l->id != it.left || l->next < 0 || sym[l->next].id != it.right)
                continue; /* stale: a neighbour merged since this was pushed */
            int32_t r = l->next;
            l->id = it.merged;
            l->next = sym[r].next;
            if (l->next >= 0)
                sym[l->next].prev = (int32_t)it.pos;
            sym[r].id = -1;
            if (l->prev >= 0) {
                const tok_merge *pm = tok_pair_map_get(&tok->merges, sym[l->prev].id, l->id);
                if (pm)
                    rc = heap_push(&h, (heap_item){pm->rank, (uint32_t)l->prev, sym[l->prev].id, l->id, pm->merged});
            }
            if (l->next >= 0 && rc == 0) {
                const tok_merge *nm = tok_pair_map_get(&tok->merges, l->id, sym[l->next].id);
                if (nm)
                    rc = heap_push(&h, (heap_item){nm->rank, it.pos, l->id, sym[l->next].id, nm->merged});
            }
        }
        if (!h.on_stack)
            free(h.a);
        for (int32_t i = 0; i >= 0 && rc == 0; i = sym[i].next)
            rc = tok_ids_push(out, sym[i].id);
    } else if (rc == 0 && ns == 1) {
        rc = tok_ids_push(out, sym[0].id);
    }
    if (sym != small)
        free(sym);
    return rc;
}
