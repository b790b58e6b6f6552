// @solana/kit 8: airdropFactory, sendAndConfirmTransactionFactory and subscriptions, unmodified,
// against the node named on the command line (pubsub at its port + 1). Prints one JSON line.
import {
  airdropFactory,
  appendTransactionMessageInstruction,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  createTransactionMessage,
  generateKeyPairSigner,
  getSignatureFromTransaction,
  lamports,
  pipe,
  sendAndConfirmTransactionFactory,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
} from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';

const url = new URL(process.argv[2]);
const wsUrl = `ws://${url.hostname}:${Number(url.port) + 1}`;
const deadline = setTimeout(() => {
  console.error('kit_flows: timed out');
  process.exit(2);
}, 60_000);

const rpc = createSolanaRpc(url.toString());
const rpcSubscriptions = createSolanaRpcSubscriptions(wsUrl);
const payer = await generateKeyPairSigner();
const friend = await generateKeyPairSigner();

const started = Date.now();
const airdrop = airdropFactory({ rpc, rpcSubscriptions });
const airdropSig = await airdrop({
  commitment: 'confirmed',
  recipientAddress: payer.address,
  lamports: lamports(3_000_000_000n),
});
const airdropMs = Date.now() - started;

const abort = new AbortController();
const slots = await rpcSubscriptions.slotNotifications().subscribe({ abortSignal: abort.signal });
const accounts = await rpcSubscriptions
  .accountNotifications(friend.address, { commitment: 'confirmed', encoding: 'base64' })
  .subscribe({ abortSignal: abort.signal });
// Kit hands a notification only to an iterator already waiting: start waiting now.
const firstOf = async (iterable) => {
  for await (const item of iterable) return item;
};
const friendChanged = firstOf(accounts);
const nextSlot = firstOf(slots);

const { value: latestBlockhash } = await rpc.getLatestBlockhash({ commitment: 'confirmed' }).send();
const message = pipe(
  createTransactionMessage({ version: 0 }),
  (m) => setTransactionMessageFeePayerSigner(payer, m),
  (m) => setTransactionMessageLifetimeUsingBlockhash(latestBlockhash, m),
  (m) =>
    appendTransactionMessageInstruction(
      getTransferSolInstruction({ source: payer, destination: friend.address, amount: lamports(1_000_000_000n) }),
      m,
    ),
);
const signed = await signTransactionMessageWithSigners(message);
const sendAndConfirm = sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions });
await sendAndConfirm(signed, { commitment: 'confirmed' });
const transferSig = getSignatureFromTransaction(signed);

const friendLamports = (await friendChanged).value.lamports.toString();
const slot = (await nextSlot).slot.toString();
abort.abort();
const balance = await rpc.getBalance(friend.address, { commitment: 'confirmed' }).send();

console.log(
  JSON.stringify({ airdropSig, airdropMs, transferSig, friendLamports, slot, balance: balance.value.toString() }),
);
clearTimeout(deadline);
process.exit(0);
