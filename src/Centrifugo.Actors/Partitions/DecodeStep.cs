using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The step every source runs on each message before a pass plans its commands: decode it, attach the derived
/// idempotency key when the consumer asks for one, and turn whatever throws on the way (a decoder bug, an input nothing
/// foresaw) into a rejection, so the message goes to the dead letters with the exception as its reason and the messages
/// behind it flow, instead of an exception failing the pass or the partition's loop over and over. Pure; the source
/// logs a returned exception with its own position (consumer, partition, id or offset).
/// </summary>
internal static class DecodeStep
{
    /// <param name="message">The source's message and what its delegates need (a value tuple: no allocation per message).</param>
    /// <param name="decode">Decodes <paramref name="message"/>.</param>
    /// <param name="idempotencyKey">The derived key of <paramref name="message"/>; null when the consumer derives none.</param>
    /// <param name="failure">The exception that made the message a rejection; null when nothing threw.</param>
    public static DecodeResult Run<TMessage>(
        TMessage message, Func<TMessage, DecodeResult> decode, Func<TMessage, string>? idempotencyKey, out Exception? failure)
    {
        failure = null;
        var step = "decode";
        try
        {
            var decoded = decode(message);
            if (idempotencyKey is null)
            {
                return decoded;
            }

            step = "derive the idempotency key";
            return WithKey(decoded, message, idempotencyKey);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not ObjectDisposedException)
        {
            failure = e;
            return DecodeResult.Reject($"cannot {step}: {e.GetType().Name}: {e.Message}");
        }
    }

    // Its own method: the closure is allocated only for a consumer that derives keys.
    private static DecodeResult WithKey<TMessage>(DecodeResult decoded, TMessage message, Func<TMessage, string> idempotencyKey) =>
        IdempotencyKeys.Attach(decoded, () => idempotencyKey(message));
}
