package io.moe4j.train.data;

import java.io.IOException;
import java.io.InputStream;

/**
 * One input file of a corpus, resolved from a source spec by {@link Sources}.
 *
 * @param name     stable name, relative to the spec's root ("input.txt", "bible/01-genesis.txt",
 *                 "bundled/drama-shakespeare.txt"); document ids are built from it, so it decides the split and must
 *                 not depend on where the corpus lives
 * @param domain   domain label, or null when the source has none
 * @param location where it is read from (absolute path, or "classpath:/corpus/..."), for messages and the cache key
 * @param size     bytes of the stored file (compressed size for gzip files)
 * @param version  what changes when the content changes (modification time, or a content hash for resources)
 * @param gzip     stored gzip-compressed
 * @param opener   opens the stored (possibly compressed) bytes
 */
public record TextSource(String name, String domain, String location, long size, String version, boolean gzip,
                         Opener opener) {

    @FunctionalInterface
    public interface Opener {
        InputStream open() throws IOException;
    }

    /** The line of the cache key that identifies this source's content. */
    String keyLine() {
        return name + '\t' + domain + '\t' + location + '\t' + size + '\t' + version + '\t' + gzip;
    }
}
